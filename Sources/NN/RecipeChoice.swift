// A closed set of string values in a configuration file (recipes, the nets' options): decoding
// names the allowed values when a string is none of them.

/// A recipe key with a closed set of values, written in YAML as its raw string. Decoding refuses
/// any other string with a message that lists the allowed values (`Recipe.parse` reports it with
/// the file and key path).
public protocol RecipeChoice: RawRepresentable, Codable, Sendable, CaseIterable, CustomStringConvertible
where RawValue == String {}

extension RecipeChoice {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: text) else {
            let problem = UnknownChoice(value: text, allowed: Self.allCases.map(\.rawValue))
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem.description,
                                                    underlyingError: problem))
        }
        self = value
    }

    /// The YAML spelling, so interpolating a choice prints what a recipe would say.
    public var description: String { rawValue }
}

/// A string that names none of a choice's values.
public struct UnknownChoice: Error, CustomStringConvertible {
    public let value: String, allowed: [String]
    public var description: String { "unknown value '\(value)'; expected one of \(allowed.joined(separator: ", "))" }
}
