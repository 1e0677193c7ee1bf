// The `metrics-collector` executable: everything it does is in MetricsCollectorKit.
import ArgumentParser
import MetricsCollectorKit

@main
extension MetricsCollectorCommand {}
