import Foundation

/// Wall-clock timing for benchmarks: medians over repetitions after warm-ups, since this machine
/// is shared and noisy.
public enum Timing {
    /// Monotonic seconds.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// CPU seconds this process has run on all its threads. A virtual machine's kernel leaves out
    /// the time the host gave the vCPU to others (steal), which wall time includes: at one thread
    /// it is the steadier measure on a shared host.
    public static func cpuNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Runs `body` `warmup` times untimed, then `reps` times; returns the sorted wall durations and,
    /// separately sorted, the process CPU time of each run (s).
    public static func measure(reps: Int, warmup: Int = 1, _ body: () -> Void) -> (wall: [Double], cpu: [Double]) {
        for _ in 0..<warmup { body() }
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<max(1, reps) {
            let t0 = now(), c0 = cpuNow()
            body()
            wall.append(now() - t0)
            cpu.append(cpuNow() - c0)
        }
        return (wall.sorted(), cpu.sorted())
    }

    /// Runs each body `warmup` times untimed, then times them in turn, `reps` rounds of one run of
    /// each: a shared machine's slow spells then fall on all of them alike, so their ratios hold.
    /// Returns each body's sorted durations (s).
    public static func interleaved(reps: Int, warmup: Int = 1, _ bodies: [() -> Void]) -> [[Double]] {
        for body in bodies { for _ in 0..<warmup { body() } }
        var times = [[Double]](repeating: [], count: bodies.count)
        for _ in 0..<max(1, reps) {
            for (i, body) in bodies.enumerated() {
                let t0 = now()
                body()
                times[i].append(now() - t0)
            }
        }
        return times.map { $0.sorted() }
    }

    public static func median(_ sorted: [Double]) -> Double {
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    /// Peak resident set size of this process in MB (VmHWM).
    public static func peakRSSMB() -> Double { statusMB("VmHWM:") }

    /// Current resident set size of this process in MB (VmRSS).
    public static func residentMB() -> Double { statusMB("VmRSS:") }

    /// A kB field of /proc/self/status in MB (0 where there is none).
    static func statusMB(_ field: String) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(field) {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb / 1024
        }
        return 0
    }
}
