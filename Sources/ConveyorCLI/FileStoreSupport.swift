import Conveyor

/// Opens the file store for `--store file`.
enum FileStoreSupport {
    static func make(directory: String) throws -> any MessageStore {
        FileStore(directory: directory)
    }
}
