// Decode-over-defaults for every configuration type: what a user writes (YAML or JSON) is laid
// key by key over the encoded defaults of the type, then decoded by its synthesized Codable
// conformance. The defaults come from the value's own properties, found by reflection, so an
// optional sub-configuration or an array element starts from its type's `init()`
// (`DefaultConfig`), and a stage from the defaults of its kind.
import FlowData
import Foundation
import Yams

/// A configuration whose defaults depend on what the user wrote (a stage's `kind`).
protocol DefaultsFromUser {
    /// The defaults to lay `user` over; `path` names it in errors.
    static func defaults(under user: Node, path: [String], file: String) throws -> Any
}

public enum ConfigDecoding {
    /// Decodes `text` (YAML or JSON) over `T()`: missing keys take their defaults, unknown keys are
    /// refused with their path. `file` names the source in errors.
    public static func decode<T: DefaultConfig>(_ type: T.Type, from text: String, file: String) throws -> T {
        let user: Node
        do { user = try Yams.compose(yaml: text) ?? Node.mapping([:]) }
        catch { throw RecipeError(file: file, path: "", "not valid YAML or JSON: \(error)") }
        let merged = try overlay(user, on: T(), path: [], file: file)
        let value: T
        do { value = try YAMLDecoder().decode(T.self, from: merged) }
        catch let e as DecodingError { throw RecipeError(file: file, path: Recipe.keyPath(of: e), Recipe.describe(e)) }
        try checkKnown(user, against: value, path: [], file: file)
        return value
    }

    /// `user` laid over `defaults` (a configuration value): mappings merge key by key, a user's
    /// list replaces the default list with each element laid over its element type's defaults,
    /// anything else is the user's.
    /// `encoded`: `defaults` already encoded (a child's part of its parent's tree), if known.
    static func overlay(_ user: Node, on defaults: Any, encoded: Node? = nil, path: [String], file: String) throws -> Node {
        if let seq = user.sequence, let element = (type(of: defaults) as? ElementDefaults.Type)?.elementType {
            var items: [Node] = []
            for (i, item) in seq.enumerated() {
                let p = path + ["\(i)"]
                if let base = try defaultValue(of: element, under: item, path: p, file: file) {
                    items.append(try overlay(item, on: base, path: p, file: file))
                } else {
                    items.append(item)
                }
            }
            return Node.sequence(Node.Sequence(items))
        }
        guard let um = user.mapping, let encodable = defaults as? Encodable,
              let dm = try (encoded ?? encodeNode(encodable)).mapping else { return user }
        let children = Dictionary(Mirror(reflecting: defaults).children.compactMap { c in c.label.map { ($0, c.value) } },
                                  uniquingKeysWith: { a, _ in a })
        var out = dm
        for (k, v) in um {
            guard let key = k.string else { throw RecipeError(file: file, path: path.joined(separator: "."), "keys must be strings") }
            if let child = children[key], let base = try unwrapped(child, under: v, path: path + [key], file: file) {
                // A present value's encoding is its part of this tree; a nil optional's defaults are encoded anew.
                out[key] = try overlay(v, on: base, encoded: dm[key], path: path + [key], file: file)
            } else if let d = dm[key] {
                out[key] = merge(v, over: d)
            } else {
                out[key] = v
            }
        }
        return Node.mapping(out)
    }

    /// Two user trees: mappings merge key by key, `user` winning; anything else is `user`'s.
    static func merge(_ user: Node, over base: Node) -> Node {
        guard let um = user.mapping, var out = base.mapping else { return user }
        for (k, v) in um { out[k] = out[k].map { merge(v, over: $0) } ?? v }
        return Node.mapping(out)
    }

    /// Every key in `user` must be a property of `value` (the decoded configuration; a key set
    /// to null names an optional that stays nil).
    static func checkKnown(_ user: Node, against value: Any, path: [String], file: String) throws {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            if let some = mirror.children.first?.value { try checkKnown(user, against: some, path: path, file: file) }
            return
        }
        if let um = user.mapping, mirror.displayStyle == .struct {
            let children = Dictionary(mirror.children.compactMap { c in c.label.map { ($0, c.value) } }, uniquingKeysWith: { a, _ in a })
            for (k, v) in um {
                let key = k.string ?? "?"
                guard let child = children[key] else {
                    let known = children.keys.sorted().joined(separator: ", ")
                    throw RecipeError(file: file, path: (path + [key]).joined(separator: "."), "unknown key (known here: \(known))")
                }
                try checkKnown(v, against: child, path: path + [key], file: file)
            }
        } else if let us = user.sequence, mirror.displayStyle == .collection {
            for (i, (v, element)) in zip(us, mirror.children.map(\.value)).enumerated() {
                try checkKnown(v, against: element, path: path + ["\(i)"], file: file)
            }
        }
    }

    static func encodeNode<T: Encodable>(_ v: T) throws -> Node {
        try Yams.compose(yaml: try YAMLEncoder().encode(v)) ?? Node.mapping([:])
    }

    /// A property's value as defaults: an optional's wrapped value, or its type's defaults when nil.
    private static func unwrapped(_ value: Any, under user: Node, path: [String], file: String) throws -> Any? {
        guard let optional = type(of: value) as? OptionalDefaults.Type else { return value }
        if let some = Mirror(reflecting: value).children.first?.value { return some }
        return try defaultValue(of: optional.wrappedType, under: user, path: path, file: file)
    }

    private static func defaultValue(of type: Any.Type, under user: Node, path: [String], file: String) throws -> Any? {
        if let t = type as? DefaultsFromUser.Type { return try t.defaults(under: user, path: path, file: file) }
        return (type as? DefaultConfig.Type)?.init()
    }
}

/// Optionals and arrays name the type whose defaults stand under a user's value.
private protocol OptionalDefaults { static var wrappedType: Any.Type { get } }
private protocol ElementDefaults { static var elementType: Any.Type { get } }
extension Optional: OptionalDefaults { fileprivate static var wrappedType: Any.Type { Wrapped.self } }
extension Array: ElementDefaults { fileprivate static var elementType: Any.Type { Element.self } }
