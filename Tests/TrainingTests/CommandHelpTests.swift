import Testing
import Foundation
import TestSupport

/// Every subcommand's `--help` states, for each option that takes a value, its default (or that
/// it is required), and shows at least one example.
@Suite struct CommandHelpTests {
    static let subcommands = ["train", "evaluate", "infer", "export", "generate-dataset", "import-torch", "bench"]

    func help(_ command: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Fixtures.mdflowExecutable!)
        p.arguments = [command, "--help"]
        p.environment = ["COLUMNS": "100"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(command) --help exited \(p.terminationStatus)")
        return text
    }

    @Test(.enabled(if: Fixtures.mdflowExecutable != nil, "the mdflow executable was not built beside the tests"),
          arguments: subcommands)
    func everyOptionStatesItsDefault(_ command: String) throws {
        let text = try help(command)
        guard let options = text.components(separatedBy: "OPTIONS:").last, text.contains("OPTIONS:") else {
            Issue.record("\(command) --help has no OPTIONS section"); return
        }
        // One block per option: its line and the indented lines that continue its help.
        var blocks: [[String]] = []
        for line in options.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("  -") { blocks.append([line]) }
            else if line.hasPrefix("   "), !blocks.isEmpty { blocks[blocks.count - 1].append(line) }
        }
        #expect(blocks.count >= 2, "\(command): \(blocks.count) options found")
        for block in blocks where block[0].contains("<") {
            let all = block.joined(separator: " ").lowercased()
            #expect(all.contains("default") || all.contains("required"), "\(command): \(block[0].trimmingCharacters(in: .whitespaces)) names no default")
        }
        #expect(text.contains("mdflow \(command)") && text.lowercased().contains("example"), "\(command) --help shows no example")
    }
}
