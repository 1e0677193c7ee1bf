import Testing

@testable import SupervisorKit

/// The Procfile and `.env` formats: what they accept, and each refusal with its line.
@Suite("Procfile and .env")
struct ProcfileTests {
    @Test("a Procfile keeps its order and skips comments and blank lines")
    func parsesProcfile() throws {
        let text = """
            # Baton
            router: .build/release/router --log-level debug

              gate-evaluator:   exec ./gate-evaluator
            worker_2: sh -c 'echo a: b'
            """
        let procfile = try Procfile.parse(text)
        #expect(
            procfile.entries == [
                .init(name: "router", command: ".build/release/router --log-level debug", line: 2),
                .init(name: "gate-evaluator", command: "exec ./gate-evaluator", line: 4),
                .init(name: "worker_2", command: "sh -c 'echo a: b'", line: 5),
            ]
        )
    }

    @Test(
        "a bad Procfile line is refused with its line number",
        arguments: [
            ("router: a\nno colon here", "Procfile:2: expected 'name: command', got 'no colon here'"),
            ("router: a\nrouter: b", "Procfile:2: duplicate process name 'router' (first on line 1)"),
            ("my router: a", "Procfile:1: process name 'my router' may contain only letters, digits, '-' and '_'"),
            ("\n\nrouter:", "Procfile:3: process 'router' has no command"),
            (": cmd", "Procfile:1: missing process name before ':'"),
        ]
    )
    func refusesProcfile(text: String, message: String) {
        let error = #expect(throws: ConfigurationFileError.self) { try Procfile.parse(text) }
        #expect(error?.description == message)
    }

    @Test(".env takes KEY=VALUE, quotes, export and comments")
    func parsesDotEnv() throws {
        let text = """
            # settings
            BATON_LOG_LEVEL=debug
            export GREETING="hello world"
            SINGLE='it''s'
            EMPTY=
            SPACED = padded
            """
        let variables = try DotEnv.parse(text)
        #expect(
            variables == [
                "BATON_LOG_LEVEL": "debug", "GREETING": "hello world", "SINGLE": "it''s", "EMPTY": "",
                "SPACED": "padded",
            ]
        )
    }

    @Test(
        "a bad .env line is refused with its line number",
        arguments: [
            ("A=1\nnot a pair", ".env:2: expected KEY=VALUE, got 'not a pair'"),
            ("1A=x", ".env:1: '1A' is not a variable name (letters, digits and '_', not starting with a digit)"),
            ("A=\"open", ".env:1: the value of A has no closing \""),
        ]
    )
    func refusesDotEnv(text: String, message: String) {
        let error = #expect(throws: ConfigurationFileError.self) { try DotEnv.parse(text) }
        #expect(error?.description == message)
    }
}

/// supervisor.yaml: the default grace period and per-process overrides, and each refusal with line and column.
@Suite("supervisor.yaml")
struct SupervisorFileTests {
    let processes: Set<String> = ["router", "gate-evaluator"]

    @Test("grace and start_window, and their per-process overrides, are read")
    func parses() throws {
        let file = try SupervisorFile.parse(
            "grace: 5\nstart_window: 30\nprocesses:\n  router:\n    grace: 20\n    start_window: 90\n",
            file: "supervisor.yaml",
            processes: self.processes
        )
        #expect(
            file
                == SupervisorFile(
                    grace: 5,
                    processGrace: ["router": 20],
                    startWindow: 30,
                    processStartWindow: ["router": 90]
                )
        )
        #expect(try SupervisorFile.parse("", file: "supervisor.yaml", processes: self.processes) == SupervisorFile())
    }

    @Test(
        "a bad supervisor.yaml is refused with its line and column",
        arguments: [
            (
                "grace: 5\ngrase: 2\n",
                "supervisor.yaml:2:1: unknown key 'grase'; expected grace, start_window or processes"
            ),
            ("grace: soon\n", "supervisor.yaml:1:8: grace must be a number of seconds between 0 and 3600"),
            (
                "processes:\n  routr:\n    grace: 1\n",
                "supervisor.yaml:2:3: no process named 'routr' in the Procfile; known: gate-evaluator, router"
            ),
            (
                "processes:\n  router:\n    grase: 1\n",
                "supervisor.yaml:3:5: unknown key 'grase' for process router; expected grace or start_window"
            ),
            ("processes: [router]\n", "supervisor.yaml:1:12: processes must be a mapping of keys to values"),
            (
                "processes:\n  router:\n    start_window: -1\n",
                "supervisor.yaml:3:19: router.start_window must be a number of seconds between 0 and 3600"
            ),
        ]
    )
    func refuses(text: String, message: String) {
        let error = #expect(throws: ConfigurationFileError.self) {
            try SupervisorFile.parse(text, file: "supervisor.yaml", processes: self.processes)
        }
        #expect(error?.description == message)
    }
}
