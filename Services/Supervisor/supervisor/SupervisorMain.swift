// The `supervisor` executable: everything it does is in SupervisorKit.
import ArgumentParser
import SupervisorKit

@main
extension SupervisorCommand {}
