// The `gate-evaluator` executable: everything it does is in GateEvaluatorKit.
import ArgumentParser
import GateEvaluatorKit

@main
extension GateEvaluatorCommand {}
