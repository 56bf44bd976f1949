import ConveyorWorkloads

/// How `conveyor bench` shows results: JSON lines for scripts, a table with bars for people, and
/// progress lines while it runs.
enum BenchOutput {
    /// The width of a full bar, in character cells.
    static let barWidth = 30

    // MARK: JSON lines

    /// One result as a JSON object on one line, keys in the order of `WORKLOADS.md`. Rates carry one
    /// decimal, latencies two; figures that were not measured are left out.
    static func jsonLine(_ result: WorkloadResult) -> String {
        var fields = [
            ("workload", JSONText.string(result.workload.rawValue)),
            ("store", JSONText.string(result.store)),
            ("messages", String(result.messages)),
            ("runs", String(result.runs)),
            ("rate_median", jsonNumber(result.rateMedian, decimals: 1)),
            ("rate_min", jsonNumber(result.rateMin, decimals: 1)),
            ("rate_max", jsonNumber(result.rateMax, decimals: 1)),
            ("unit", JSONText.string(result.unit)),
        ]
        let optional: [(String, Double?, Int)] = [
            ("p50_us", result.p50Microseconds, 2),
            ("p99_us", result.p99Microseconds, 2),
            ("p999_us", result.p999Microseconds, 2),
            ("open_seconds", result.openSeconds, 3),
            ("open_after_kill_seconds", result.openAfterKillSeconds, 3),
            ("rss_anon_mib", result.rssAnonMiB, 1),
            ("fsync_floor_per_s", result.fsyncFloorPerSecond, 1),
            ("fsync_overwrite_floor_per_s", result.fsyncOverwriteFloorPerSecond, 1),
            ("lmdb_commit_floor_per_s", result.lmdbCommitFloorPerSecond, 1),
            ("synced_writes_per_1000", result.syncedWritesPerThousand, 2),
        ]
        for case let (key, value?, decimals) in optional {
            fields.append((key, jsonNumber(value, decimals: decimals)))
        }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    private static func jsonNumber(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "null" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        return String(describing: (value * scale).rounded() / scale)
    }

    // MARK: Progress

    /// A progress line for standard error: the start of a run, completed by its rate when it ends.
    static func progress(_ progress: WorkloadRunner.Progress) -> String {
        guard let measurement = progress.measurement else {
            return "\(progress.workload) \(progress.workload.name) on \(progress.store), run \(progress.run)/\(progress.runs) … "
        }
        let unit = progress.workload.workload?.unit ?? "/s"
        return "\(grouped(measurement.rate)) \(unit) in \(fixed(measurement.seconds, decimals: 2)) s\n"
    }

    // MARK: Table

    /// A table of results, grouped by workload, one row per store: the median rate with its unit, a
    /// bar scaled to the fastest store of the workload, and the min–max of the runs. Latency
    /// workloads get a second line with their percentiles.
    static func table(_ results: [WorkloadResult]) -> String {
        guard let first = results.first else { return "No results.\n" }
        let runs = Set(results.map(\.runs))
        let runText = runs.count == 1 ? "median of \(first.runs) run\(first.runs == 1 ? "" : "s")" : "median of the runs"
        let header = "Conveyor bench: \(runText); bars scaled to the fastest store of each workload\n\n"

        struct Row {
            var label: String
            var store: String
            var median: String
            var unit: String
            var bar: String
            var range: String
            var latency: String?
        }
        var rows: [Row] = []
        var previous: WorkloadID?
        for result in results {
            let fastest = results.filter { $0.workload == result.workload }.map(\.rateMedian).max() ?? 0
            let isFirstOfWorkload = result.workload != previous
            previous = result.workload
            var latency: String?
            if let p50 = result.p50Microseconds, let p99 = result.p99Microseconds, let p999 = result.p999Microseconds {
                latency = "p50 \(micro(p50)) · p99 \(micro(p99)) · p99.9 \(micro(p999))"
            } else if let open = result.openSeconds {
                let afterKill = result.openAfterKillSeconds.map { " (\(fixed($0, decimals: 3)) s after a kill)" } ?? ""
                latency = "open \(fixed(open, decimals: 3)) s\(afterKill), then drain at the rate above"
            } else if let floor = result.fsyncFloorPerSecond {
                latency = "fsync floor \(grouped(floor)) syncs/s: \(fixed(100 * result.rateMedian / floor, decimals: 0)) % of it"
                if let overwrite = result.fsyncOverwriteFloorPerSecond {
                    latency? += " (rewriting in place \(grouped(overwrite))/s: \(fixed(100 * result.rateMedian / overwrite, decimals: 0)) %)"
                }
                if let lmdbFloor = result.lmdbCommitFloorPerSecond {
                    latency? += "; bare LMDB commits \(grouped(lmdbFloor))/s (\(fixed(100 * lmdbFloor / floor, decimals: 0)) %)"
                }
            } else if let memory = result.rssAnonMiB {
                latency = "anonymous resident memory \(fixed(memory, decimals: 1)) MiB with the backlog queued"
            }
            if let synced = result.syncedWritesPerThousand {
                let unit = result.unit.hasPrefix("deliveries") ? "deliveries" : "messages"
                let perThousand = "\(fixed(synced, decimals: synced < 10 ? 1 : 0)) synced writes per 1,000 \(unit)"
                latency = latency.map { "\($0); \(perThousand)" } ?? perThousand
            }
            rows.append(Row(
                label: isFirstOfWorkload ? "\(result.workload.rawValue)  \(result.workload.name)" : "",
                store: result.store,
                median: grouped(result.rateMedian),
                unit: result.unit,
                bar: bar(fastest > 0 ? result.rateMedian / fastest : 0),
                range: "\(grouped(result.rateMin))–\(grouped(result.rateMax))",
                latency: latency))
        }

        let labelWidth = max(rows.map(\.label.count).max() ?? 0, "workload".count)
        let storeWidth = max(rows.map(\.store.count).max() ?? 0, "store".count)
        let medianWidth = rows.map(\.median.count).max() ?? 0
        let unitWidth = rows.map(\.unit.count).max() ?? 0
        let rangeWidth = max(rows.map(\.range.count).max() ?? 0, "min–max".count)
        let rateWidth = medianWidth + 1 + unitWidth
        let gap = "  "

        var lines = [
            pad("workload", labelWidth) + gap + pad("store", storeWidth) + gap + pad("median", rateWidth) + gap
                + pad("", barWidth) + gap + padLeft("min–max", rangeWidth)
        ]
        for (index, row) in rows.enumerated() {
            if index > 0, !row.label.isEmpty { lines.append("") }
            lines.append(
                pad(row.label, labelWidth) + gap + pad(row.store, storeWidth) + gap
                    + padLeft(row.median, medianWidth) + " " + pad(row.unit, unitWidth) + gap
                    + pad(row.bar, barWidth) + gap + padLeft(row.range, rangeWidth))
            if let latency = row.latency {
                lines.append(String(repeating: " ", count: labelWidth + storeWidth + 2 * gap.count) + latency)
            }
        }
        return header + lines.map { trimTrailingSpaces($0) }.joined(separator: "\n") + "\n"
    }

    /// A bar of `fraction` (0…1) of ``barWidth`` cells, in eighths of a cell.
    static func bar(_ fraction: Double) -> String {
        let partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        let clamped = fraction.isFinite ? min(max(fraction, 0), 1) : 0
        var eighths = Int((clamped * Double(barWidth * 8)).rounded())
        if clamped > 0 { eighths = max(eighths, 1) }
        return String(repeating: "█", count: eighths / 8) + partials[eighths % 8]
    }

    // MARK: Numbers and padding

    /// A number rounded to a whole, with thousands separators: `1,234,567`.
    static func grouped(_ value: Double) -> String {
        guard value.isFinite else { return "—" }
        let rounded = Int(value.rounded())
        let digits = String(rounded.magnitude)
        var text = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index).isMultiple(of: 3) { text += "," }
            text.append(digit)
        }
        return (rounded < 0 ? "-" : "") + text
    }

    /// A number with a fixed count of decimals: `0.16`.
    static func fixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "—" }
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int((value.magnitude * Double(scale)).rounded())
        let sign = value < 0 && scaled > 0 ? "-" : ""
        let whole = sign + grouped(Double(scaled / scale))
        guard decimals > 0 else { return whole }
        let fraction = String(scaled % scale)
        return whole + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }

    private static func micro(_ value: Double) -> String { "\(fixed(value, decimals: 1)) µs" }

    private static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    private static func padLeft(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    private static func trimTrailingSpaces(_ line: String) -> String {
        var line = line
        while line.last == " " { line.removeLast() }
        return line
    }
}
