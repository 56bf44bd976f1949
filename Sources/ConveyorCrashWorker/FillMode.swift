// The worker's "fill" mode, for the disk-full tests (Tests/ConveyorTests/DiskFullTests.swift):
//
//     ConveyorCrashWorker fill <lmdb|file> <directory> <headroom-bytes>
//
// Opens an LMDBStore or a FileStore (default options, sync durability) on <directory> with a
// broker, then limits the size of every file this process writes to the size of the largest file
// in <directory> plus <headroom-bytes> (`setrlimit(RLIMIT_FSIZE)`) and ignores SIGXFSZ, so that a
// write past the limit fails with EFBIG, the way one fails with ENOSPC on a full disk. Then sends
// persistent 4 KiB messages numbered from 1 (integer property "n") to the queue "disk-full", one
// at a time from a non-transacted session, until a send fails. The journal on stdout, one write(2)
// per line:
//
//     LIMIT <bytes> largest=<bytes>          the limit is set (and the largest file when it was)
//     SENT n                                 the send of message n returned successfully
//     ERROR <code> <message>                 the first send that failed, with its ConveyorError's
//                                            code (`storage`, `resourceAllocation`, …) and message
//     CLOSED                                 the broker closed after the failure; exit status 0
//
// Exits with status 2 (after an `ERROR` line that is not about a send: usage, opening, the limit)
// or 4 (after `NOERROR`) when no send failed although the store was given far more than the
// limit can hold.

import Conveyor
import ConveyorLMDB
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The body size of every message in the fill mode.
let fillBodySize = 4 << 10

/// The fill mode: see the comment at the top of this file. `arguments` follow "fill".
func fill(_ arguments: [String]) async -> Never {
    guard arguments.count == 3, ["lmdb", "file"].contains(arguments[0]), let headroom = Int(arguments[2]), headroom > 0
    else {
        fail("usage: ConveyorCrashWorker fill <lmdb|file> <directory> <headroom-bytes>")
    }
    let kind = arguments[0]
    let directory = arguments[1]
    let store: any MessageStore =
        kind == "file"
        ? FileStore(directory: directory, options: FileStore.Options(durability: .sync))
        : LMDBStore(directory: directory, options: LMDBStore.Options(durability: .sync))
    let broker: Broker
    let producer: MessageProducer
    do {
        broker = try Broker(store: store, configuration: BrokerConfiguration())
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let session = try connection.createSession(.autoAcknowledge)
        producer = try session.createProducer(for: .queue(Queue("disk-full")))
    } catch {
        fail("cannot open the broker: \(error)")
    }

    // The files exist now (the FileStore's segment with its preallocated zeros, LMDB's data and
    // lock files): the limit leaves each of them `headroom` bytes to grow.
    let largest = largestFileSize(in: directory)
    let limit = largest + headroom
    signal(SIGXFSZ, SIG_IGN)
    var limits = rlimit()
    guard getrlimit(fileSizeLimitResource, &limits) == 0 else { fail("getrlimit: \(String(cString: strerror(errno)))") }
    limits.rlim_cur = rlim_t(limit)
    guard setrlimit(fileSizeLimitResource, &limits) == 0 else { fail("setrlimit: \(String(cString: strerror(errno)))") }
    emit("LIMIT \(limit) largest=\(largest)")

    // A store that held four times the limit in bodies is not limited at all: stop there.
    let most = min(100_000, 4 * limit / fillBodySize + 1_000)
    let filler = [UInt8](repeating: UInt8(ascii: "x"), count: fillBodySize)
    for n in 1...most {
        var body = filler
        let label = Array("message \(n) ".utf8)
        body.replaceSubrange(0..<label.count, with: label)
        do {
            _ = try await producer.send(try Message.bytes(body).with("n", n))
        } catch {
            emit("ERROR \(codeName(error.code)) \(error.message.replacingOccurrences(of: "\n", with: " "))")
            broker.close()
            emit("CLOSED")
            exit(0)
        }
        emit("SENT \(n)")
    }
    broker.close()
    emit("NOERROR after \(most) messages")
    exit(4)
}

/// The code as its Swift name (one word), for the journal.
func codeName(_ code: ConveyorError.Code) -> String {
    switch code {
    case .storage: "storage"
    case .resourceAllocation: "resourceAllocation"
    case .illegalState: "illegalState"
    case .timeout: "timeout"
    default: code.description.replacingOccurrences(of: " ", with: "_")
    }
}

/// The size of the largest regular file directly in `directory` (the stores keep their files there).
func largestFileSize(in directory: String) -> Int {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    var largest = 0
    for name in names {
        var status = stat()
        guard stat(directory + "/" + name, &status) == 0, Int(status.st_mode) & Int(S_IFMT) == Int(S_IFREG) else { continue }
        largest = max(largest, Int(status.st_size))
    }
    return largest
}

/// `RLIMIT_FSIZE` as `getrlimit`/`setrlimit` take it (Glibc imports the resource as a struct,
/// Darwin as an `Int32`).
#if canImport(Glibc)
let fileSizeLimitResource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
#else
let fileSizeLimitResource = RLIMIT_FSIZE
#endif
