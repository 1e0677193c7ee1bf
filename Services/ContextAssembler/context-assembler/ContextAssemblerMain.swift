// The `context-assembler` executable: everything it does is in ContextAssemblerKit.
import ArgumentParser
import ContextAssemblerKit

@main
extension ContextAssemblerCommand {}
