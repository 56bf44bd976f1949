/// A compiled `LIKE` pattern: `%` matches any sequence of characters (including none), `_` exactly
/// one character, and the escape character makes the character after it literal. The match is
/// anchored: the pattern must cover the whole string. Characters are Unicode scalars throughout.
///
/// Matching works on the subject's UTF-8 bytes, with no allocation: literal text is compared byte
/// for byte and `_` consumes one Unicode scalar. So `LIKE` compares scalars exactly, as Java
/// compares UTF-16 units, with no Unicode normalization (`=` on strings uses Swift's `String`
/// equality, which does normalize). The pattern is compiled once, when the selector is parsed, and
/// matched with the classic iterative wildcard algorithm, which on a mismatch retries only from the
/// most recent `%`: O(pattern × subject) at worst, linear in practice.
struct LikePattern: Sendable {
    /// One compiled pattern element.
    enum Element: Sendable, Equatable {
        /// Literal text: this range of ``literals`` must appear as is.
        case literal(Range<Int>)
        /// `_`: any one Unicode scalar.
        case anyCharacter
        /// `%`: any sequence, including none; consecutive `%` are folded into one.
        case anySequence
    }

    /// Why a pattern could not be compiled.
    enum CompileError: Error, Equatable {
        /// The pattern ends with the escape character, which then has nothing to escape.
        case danglingEscape
    }

    /// The compiled elements, in order.
    let elements: [Element]
    /// The UTF-8 bytes of all literal runs, one after the other.
    let literals: [UInt8]

    /// Compiles a pattern.
    /// - Parameters:
    ///   - pattern: The pattern text, as written in the selector's string literal.
    ///   - escape: The escape character of the `ESCAPE` clause, if any.
    /// - Throws: ``CompileError/danglingEscape`` when the pattern ends with the escape character.
    init(_ pattern: String, escape: Unicode.Scalar?) throws(CompileError) {
        var elements: [Element] = []
        var literals: [UInt8] = []
        var runStart = 0
        func endRun() {
            if literals.count > runStart { elements.append(.literal(runStart..<literals.count)) }
            runStart = literals.count
        }
        var escaping = false
        for character in pattern.unicodeScalars {
            if !escaping, character == escape {
                escaping = true
            } else if !escaping, character == "%" {
                endRun()
                if elements.last != .anySequence { elements.append(.anySequence) }
            } else if !escaping, character == "_" {
                endRun()
                elements.append(.anyCharacter)
            } else {
                literals.append(contentsOf: character.utf8)
                escaping = false
            }
        }
        if escaping { throw .danglingEscape }
        endRun()
        self.elements = elements
        self.literals = literals
    }

    /// Whether `subject` matches the whole pattern.
    /// - Parameter subject: The string to test.
    /// - Returns: `true` when the pattern matches all of `subject`.
    func matches(_ subject: String) -> Bool {
        var subject = subject  // `withUTF8` needs a variable; a native string is not copied.
        return subject.withUTF8(matchesUTF8)
    }

    /// The iterative wildcard matcher over UTF-8 bytes. Every index it holds is at the start of a
    /// scalar: literal runs are whole scalars, and `_` and backtracking step one scalar at a time.
    private func matchesUTF8(_ subject: UnsafeBufferPointer<UInt8>) -> Bool {
        let end = subject.count
        var s = 0
        var p = 0
        var lastStar: Int?
        var lastStarSubject = 0
        while true {
            if p == elements.count {
                if s == end { return true }
            } else {
                switch elements[p] {
                case .anySequence:
                    if p == elements.count - 1 { return true }  // a trailing % matches the rest
                    lastStar = p
                    lastStarSubject = s
                    p += 1
                    continue
                case .anyCharacter where s < end:
                    s += Self.scalarLength(subject[s])
                    p += 1
                    continue
                case .literal(let run) where hasLiteral(run, in: subject, at: s):
                    s += run.count
                    p += 1
                    continue
                default:
                    break
                }
            }
            // Mismatch: let the last % swallow one more scalar and retry after it.
            guard let star = lastStar, lastStarSubject < end else { return false }
            lastStarSubject += Self.scalarLength(subject[lastStarSubject])
            s = lastStarSubject
            p = star + 1
        }
    }

    /// Whether the literal run's bytes appear in `subject` at `offset`.
    private func hasLiteral(_ run: Range<Int>, in subject: UnsafeBufferPointer<UInt8>, at offset: Int) -> Bool {
        guard subject.count - offset >= run.count else { return false }
        var i = offset
        for byte in literals[run] {
            if subject[i] != byte { return false }
            i += 1
        }
        return true
    }

    /// The length in bytes of the UTF-8 scalar that starts with `lead` (Swift strings hold valid UTF-8).
    private static func scalarLength(_ lead: UInt8) -> Int {
        switch lead {
        case ..<0x80: 1
        case ..<0xE0: 2
        case ..<0xF0: 3
        default: 4
        }
    }
}
