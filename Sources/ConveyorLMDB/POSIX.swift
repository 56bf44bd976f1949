#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin wrappers over the POSIX calls the process-sharing files need, named so they do not clash
/// with the store's own `open` and `close`.
enum POSIX {
    /// `open(2)` with `O_CLOEXEC`; -1 and `errno` on failure.
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o644) -> Int32 {
        #if canImport(Glibc)
        Glibc.open(path, flags | O_CLOEXEC, mode)
        #else
        Darwin.open(path, flags | O_CLOEXEC, mode)
        #endif
    }

    /// `close(2)`, ignoring the result.
    static func close(_ descriptor: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(descriptor)
        #else
        _ = Darwin.close(descriptor)
        #endif
    }

    /// The text of an `errno` value.
    static func describe(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// `flock(2)`, retried when a signal interrupts it; returns 0 or the `errno` value.
    static func lock(_ descriptor: Int32, _ operation: Int32) -> Int32 {
        while true {
            if flock(descriptor, operation) == 0 { return 0 }
            let code = errno
            if code != EINTR { return code }
        }
    }

    /// Removes a file or an empty directory; a missing one is not an error.
    static func unlinkIfPresent(_ path: String) {
        _ = unlink(path)
    }
}
