// The `desk` executable: everything it does is in DeskKit.
import ArgumentParser
import DeskKit

@main
extension DeskCommand {}
