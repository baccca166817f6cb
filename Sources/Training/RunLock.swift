import Foundation

/// One writer per run directory: an exclusive `flock` on DIR/.lock, held while a trainer owns the
/// directory. The kernel drops the lock when its process dies, however it dies, so a stale lock
/// never blocks a resume; the file keeps the owner's pid for the error message.
final class RunLock {
    private let fd: Int32

    init(_ dir: URL) throws {
        let path = dir.appendingPathComponent(".lock").path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrainingError("\(path): cannot open the run lock (\(String(cString: strerror(errno))))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let owner = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw TrainingError("\(dir.path) is in use by another training process\(owner.isEmpty ? "" : " (pid \(owner))"); one run directory takes one writer")
        }
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
