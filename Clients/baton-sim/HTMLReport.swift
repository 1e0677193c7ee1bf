import Foundation

/// `--html FILE`: the report on one self-contained page (no script, nothing fetched): the figures side by side, the
/// histogram of time to live human for each mode with the 4 to 6 s window marked and 8 s and 20 s drawn, and the
/// failover reasons Baton's collector gave.
enum HTMLReport {
    /// The histogram's bins: one second each up to 30 s, then one for everything later.
    static let binSeconds = 30
    static let colours = ["#1f6feb", "#d1242f", "#8250df", "#1a7f37"]

    static func render(_ reports: [Report], scenario: String) -> String {
        let generated = ISO8601DateFormatter().string(from: Date())
        let legend = reports.enumerated().map { index, report in
            "<span class=\"key\" style=\"background:\(Self.colours[index % Self.colours.count])\"></span>"
                + Self.escape(report.mode.rawValue)
        }.joined(separator: " &nbsp; ")
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>baton-sim: \(Self.escape(scenario))</title>
            <style>
            body { font: 15px/1.45 system-ui, sans-serif; color: #1f2328; margin: 2rem auto; max-width: 980px; padding: 0 1rem; }
            h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
            table { border-collapse: collapse; } td, th { padding: 2px 12px; text-align: right; }
            td:first-child, th:first-child { text-align: left; } tr:nth-child(even) { background: #f6f8fa; }
            .key { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
            svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
            </style>
            </head>
            <body>
            <h1>baton-sim: the essay's test</h1>
            <p>Scenario <code>\(Self.escape(scenario))</code>, written \(generated). Figures from Baton's metrics
            collector; the humans' times at full scale.</p>
            <h2>Time to live human</h2>
            <p>\(legend)</p>
            \(Self.histogram(reports))
            <h2>Why the collector called them failovers</h2>
            \(Self.reasons(reports))
            <h2>The figures</h2>
            \(Self.table(reports))
            </body>
            </html>

            """
    }

    /// One bar per mode in each one-second bin, as a share of that mode's handoffs that reached a human.
    static func histogram(_ reports: [Report]) -> String {
        let width = 940.0
        let height = 300.0
        let left = 44.0
        let bottom = 30.0
        let bins = Self.binSeconds + 1
        let binWidth = (width - left) / Double(bins)
        let shares: [[Double]] = reports.map { report in
            let times = report.liveTimes
            var counts = [Double](repeating: 0, count: bins)
            for ms in times {
                counts[min(bins - 1, Int(ms / 1000))] += 1
            }
            return counts.map { times.isEmpty ? 0 : $0 / Double(times.count) }
        }
        let top = max(0.05, shares.flatMap { $0 }.max() ?? 0)
        let plot = height - bottom
        func x(_ seconds: Double) -> Double { left + seconds * binWidth }
        func y(_ share: Double) -> Double { plot - share / top * (plot - 10) }
        var svg = [
            "<svg role=\"img\" aria-label=\"Histogram of time to live human\" width=\"\(Int(width))\" "
                + "height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">",
            "<rect x=\"\(x(4))\" y=\"0\" width=\"\(x(6) - x(4))\" height=\"\(plot)\" fill=\"#dafbe1\"/>",
            "<text x=\"\(x(4) + 4)\" y=\"14\">4-6 s target</text>",
        ]
        let barWidth = binWidth * 0.8 / Double(max(1, reports.count))
        for (mode, values) in shares.enumerated() {
            for (bin, share) in values.enumerated() where share > 0 {
                let barX = x(Double(bin)) + binWidth * 0.1 + Double(mode) * barWidth
                svg.append(
                    "<rect x=\(Self.attribute(barX)) y=\(Self.attribute(y(share))) width=\(Self.attribute(barWidth)) "
                        + "height=\(Self.attribute(plot - y(share))) fill=\"\(Self.colours[mode % Self.colours.count])\">"
                        + "<title>\(Self.escape(reports[mode].mode.rawValue)): "
                        + String(format: "%.1f%%", share * 100)
                        + (bin == bins - 1 ? " over \(Self.binSeconds) s" : " from \(bin) to \(bin + 1) s")
                        + "</title></rect>"
                )
            }
        }
        for (seconds, label) in [(8.0, "8 s: never over"), (20.0, "20 s: callers are lost")] {
            svg.append(
                "<line x1=\(Self.attribute(x(seconds))) x2=\(Self.attribute(x(seconds))) y1=\"0\" y2=\"\(plot)\" "
                    + "stroke=\"#57606a\" stroke-dasharray=\"4 3\"/>"
            )
            svg.append("<text x=\(Self.attribute(x(seconds) + 4)) y=\"28\">\(label)</text>")
        }
        svg.append("<line x1=\"\(left)\" x2=\"\(width)\" y1=\"\(plot)\" y2=\"\(plot)\" stroke=\"#1f2328\"/>")
        for seconds in stride(from: 0, through: Self.binSeconds, by: 5) {
            svg.append(
                "<text x=\(Self.attribute(x(Double(seconds)))) y=\"\(plot + 16)\" text-anchor=\"middle\">"
                    + "\(seconds) s</text>"
            )
        }
        svg.append(
            "<text x=\(Self.attribute(x(Double(Self.binSeconds) + 0.5))) y=\"\(plot + 16)\" text-anchor=\"middle\">"
                + "later</text>"
        )
        for step in 0...4 {
            let share = top * Double(step) / 4
            svg.append(
                "<text x=\"\(left - 6)\" y=\(Self.attribute(y(share) + 4)) text-anchor=\"end\">"
                    + String(format: "%.0f%%", share * 100) + "</text>"
            )
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }

    /// A horizontal bar per reason and mode.
    static func reasons(_ reports: [Report]) -> String {
        let rows = reports.enumerated().flatMap { index, report in
            report.failoverReasons.map { (mode: index, reason: $0.0, count: $0.1) }
        }
        guard !rows.isEmpty else {
            return "<p>None: every handoff was a handoff.</p>"
        }
        let most = Double(rows.map(\.count).max() ?? 1)
        let rowHeight = 22.0
        let labelWidth = 300.0
        let barSpace = 560.0
        var svg = [
            "<svg role=\"img\" aria-label=\"Failover reasons\" width=\"940\" height=\"\(Int(Double(rows.count) * rowHeight + 8))\">"
        ]
        for (line, row) in rows.enumerated() {
            let y = Double(line) * rowHeight
            let length = Double(row.count) / most * barSpace
            svg.append(
                "<text x=\"0\" y=\(Self.attribute(y + 15))>\(Self.escape(reports[row.mode].mode.rawValue)): "
                    + "\(Self.escape(row.reason))</text>"
            )
            svg.append(
                "<rect x=\"\(labelWidth)\" y=\(Self.attribute(y + 3)) width=\(Self.attribute(length)) height=\"16\" "
                    + "fill=\"\(Self.colours[row.mode % Self.colours.count])\"/>"
            )
            svg.append(
                "<text x=\(Self.attribute(labelWidth + length + 6)) y=\(Self.attribute(y + 15))>\(row.count)</text>"
            )
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }

    static func table(_ reports: [Report]) -> String {
        let names = reports.first?.figures.map(\.0) ?? []
        let columns = reports.map { $0.figures.map(\.1) }
        var html = [
            "<table>", "<tr><th></th>" + reports.map { "<th>\(Self.escape($0.mode.rawValue))</th>" }.joined() + "</tr>",
        ]
        for (row, name) in names.enumerated() {
            html.append(
                "<tr><td>\(Self.escape(name).replacingOccurrences(of: "  ", with: "&nbsp;&nbsp;&nbsp;"))</td>"
                    + columns.map { "<td>\(Self.escape($0[row]))</td>" }.joined() + "</tr>"
            )
        }
        html.append("</table>")
        return html.joined(separator: "\n")
    }

    static func attribute(_ value: Double) -> String {
        "\"" + String(format: "%.1f", value) + "\""
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
