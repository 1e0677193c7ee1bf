// The `router` executable: everything it does is in RouterKit.
import ArgumentParser
import RouterKit

@main
extension RouterCommand {}
