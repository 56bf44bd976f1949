/// A compiled `LIKE` pattern: `%` matches any sequence of characters (including none), `_` exactly
/// one character, and the escape character makes the character after it literal.
///
/// The pattern is compiled once, when the selector is parsed; matching walks the subject string by
/// `Character` with no allocation. Patterns that are a plain literal, a literal followed by `%`, or
/// `%` followed by a literal take a shortcut; all others use the classic iterative wildcard matcher,
/// which backtracks only to the most recent `%` and so runs in O(pattern × subject) at worst.
struct LikePattern: Sendable {
    /// One compiled pattern element.
    enum Element: Sendable, Equatable {
        /// A character that must appear as is.
        case literal(Character)
        /// `_`: any one character.
        case anyCharacter
        /// `%`: any sequence of characters; consecutive `%` are folded into one.
        case anySequence
    }

    /// How a pattern is matched.
    private enum Strategy: Sendable {
        /// No wildcard: the subject must equal the text.
        case exact(String)
        /// `text%`: the subject must start with the text.
        case prefix(String)
        /// `%text`: the subject must end with the text.
        case suffix(String)
        /// Anything else.
        case general
    }

    /// Why a pattern could not be compiled.
    enum CompileError: Error, Equatable {
        /// The pattern ends with the escape character, which then has nothing to escape.
        case danglingEscape
    }

    /// The compiled elements, in order.
    let elements: [Element]
    private let strategy: Strategy

    /// Compiles a pattern.
    /// - Parameters:
    ///   - pattern: The pattern text, as written in the selector's string literal.
    ///   - escape: The escape character of the `ESCAPE` clause, if any.
    /// - Throws: ``CompileError/danglingEscape`` when the pattern ends with the escape character.
    init(_ pattern: String, escape: Character?) throws(CompileError) {
        var elements: [Element] = []
        var escaping = false
        for character in pattern {
            if escaping {
                elements.append(.literal(character))
                escaping = false
            } else if character == escape {
                escaping = true
            } else if character == "%" {
                if elements.last != .anySequence { elements.append(.anySequence) }
            } else if character == "_" {
                elements.append(.anyCharacter)
            } else {
                elements.append(.literal(character))
            }
        }
        if escaping { throw .danglingEscape }
        self.elements = elements
        self.strategy = Self.strategy(for: elements)
    }

    /// Whether `subject` matches the whole pattern.
    /// - Parameter subject: The string to test.
    /// - Returns: `true` when the pattern matches all of `subject`.
    func matches(_ subject: String) -> Bool {
        switch strategy {
        case .exact(let text): subject == text
        case .prefix(let text): subject.hasPrefix(text)
        case .suffix(let text): subject.hasSuffix(text)
        case .general: matchesGeneral(subject)
        }
    }

    /// Picks the shortcut that applies to `elements`, if any.
    private static func strategy(for elements: [Element]) -> Strategy {
        func literalText(_ slice: ArraySlice<Element>) -> String? {
            var text = ""
            for element in slice {
                guard case .literal(let character) = element else { return nil }
                text.append(character)
            }
            return text
        }
        if let text = literalText(elements[...]) { return .exact(text) }
        if elements.last == .anySequence, let text = literalText(elements.dropLast()) { return .prefix(text) }
        if elements.first == .anySequence, let text = literalText(elements.dropFirst()) { return .suffix(text) }
        return .general
    }

    /// The iterative wildcard matcher: on a mismatch, retry from the last `%` with that `%`
    /// swallowing one more character.
    private func matchesGeneral(_ subject: String) -> Bool {
        var s = subject.startIndex
        var p = 0
        var lastStar: Int?
        var lastStarSubject = subject.startIndex
        while s < subject.endIndex {
            if p < elements.count {
                switch elements[p] {
                case .anySequence:
                    lastStar = p
                    lastStarSubject = s
                    p += 1
                    continue
                case .anyCharacter:
                    p += 1
                    s = subject.index(after: s)
                    continue
                case .literal(let character):
                    if subject[s] == character {
                        p += 1
                        s = subject.index(after: s)
                        continue
                    }
                }
            }
            guard let star = lastStar else { return false }
            p = star + 1
            lastStarSubject = subject.index(after: lastStarSubject)
            s = lastStarSubject
        }
        while p < elements.count, elements[p] == .anySequence { p += 1 }
        return p == elements.count
    }
}
