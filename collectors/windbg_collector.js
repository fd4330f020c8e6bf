"use strict";

// hvci-triage collector for WinDbg's JavaScript provider (no Python inside the debugger needed).
//
// In WinDbg, with the target broken in (after a verifier stop or a bug check):
//
//     .scriptload <path of this file>
//     dx @$scriptContents.collect("C:\\path\\session.jsonl")
//
// It runs the same fixed command set as the pykd collector (collectors/pykd_collector.py) through
// host.namespace.Debugger.Utility.Control.ExecuteCommand and appends each command with its output, the
// time and the target's build to the session file as one JSON line (docs/session-format.md), closing the
// file after every record so that `hvci-triage --follow` sees it at once.
//
// Safety: debugger output is data. No command is built from text the debugger printed: only the fixed
// commands below and ln/dS/da/!dh followed by a hexadecimal number this script parsed and formatted.
// allowed() checks every command once more just before it runs.
//
// Addresses are 64-bit: they are kept as 16-digit lower-case hexadecimal strings (compared as such), so
// no JavaScript number ever rounds one.

const FORMAT = "hvci-triage-session";
const VERSION = 1;
const COLLECTOR = "windbg-js";

// Run at every stop, in this order (the same as the pykd collector's).
const FIXED_COMMANDS = ["vertarget", "!dbgprint", ".bugcheck", "!analyze -v", "kb", "lm", "!verifier 1"];
const ADDRESS_COMMANDS = ["ln", "dS", "da", "!dh"];
const ALLOWED_ADDRESS = /^(?:ln|dS|da|!dh) 0x[0-9a-f]{1,16}$/;

const MAX_OUTPUT = 1000000;
const MAX_LINES_PARSED = 20000;
const MAX_ADDRESSES = 48;
const IMAGE_SUBCODES = ["2003", "2004", "2005", "2006"];
const CALLER_SUBCODES = ["2000", "2001", "2002"];

const HEX = "[0-9a-fA-F]{1,8}`?[0-9a-fA-F]{0,8}";
const DOT_CODE = /^\s*Bugcheck code\s+(?:0x)?([0-9a-fA-F]{1,16})\s*$/;
const DOT_ARGS = new RegExp("^\\s*Arguments\\s+(" + HEX + "(?:\\s+" + HEX + "){0,3})\\s*$");
const ANALYZE_CODE = /^\s*BUGCHECK_CODE:\s+([0-9a-fA-F]{1,16})\s*$/;
const ANALYZE_PARAM = /^\s*BUGCHECK_P([1-4]):\s+([0-9a-fA-F]{1,16})\s*$/;
const ANALYZE_ARG = new RegExp("^\\s*Arg([1-4]):\\s+(" + HEX + ")\\s*(?:,|$)");
const CODE_INTEGRITY_ARG1 = new RegExp("^\\s*Arg1:\\s+" + HEX + "\\s*,\\s*Code Integrity Issue");
const ANALYZE_TITLE = /^[A-Z0-9_]+ \(([0-9a-fA-F]{1,8})\)\s*$/;
const FAULTING_MODULE = new RegExp("^\\s*FAULTING_MODULE:\\s+(" + HEX + ")\\s");
const NAME_FIELD = /^\s*(?:IMAGE_NAME|MODULE_NAME):\s+(\S{1,260})\s*$/;
const FRAME = new RegExp("^\\s*(?:[0-9a-fA-F]{2,4}\\s+)?(" + HEX + ")\\s+(" + HEX + ")\\s");
const MODULE = new RegExp("^\\s*(" + HEX + ")\\s+(" + HEX + ")\\s+(\\S{1,260})");
const STRING = new RegExp("^\\s*" + HEX + "\\s+\"([^\"]{1,260})\"?\\s*$");
const BUILT_BY = /^\s*Built by:\s+(\S{1,120})/;
const KERNEL_VERSION = /Kernel Version\s+([0-9]{1,6})/;

function initializeScript() {
    return [new host.apiVersionSupport(1, 7)];
}

// A printed number as 16 lower-case hex digits (comparable as a string), or null past 64 bits.
function hex64(text) {
    const digits = text.replace("`", "").toLowerCase().replace(/^0+/, "");
    if (digits.length > 16) {
        return null;
    }
    return ("0000000000000000" + digits).slice(-16);
}

function isZero(value) {
    return value === null || value === "0000000000000000";
}

function short(value) {
    return value.replace(/^0+/, "") || "0";
}

function addressCommand(name, value) {
    if (ADDRESS_COMMANDS.indexOf(name) < 0 || typeof value !== "string" || !/^[0-9a-f]{16}$/.test(value)) {
        throw new Error("not an address command: " + name);
    }
    return name + " 0x" + short(value);
}

function allowed(command) {
    return FIXED_COMMANDS.indexOf(command) >= 0 || ALLOWED_ADDRESS.test(command);
}

function linesOf(output) {
    return output.split(/\r\n|\r|\n/).slice(0, MAX_LINES_PARSED);
}

function parseBugcheck(dotBugcheck, analyze) {
    let code = null;
    let args = [];
    for (const line of linesOf(dotBugcheck)) {
        let found = DOT_CODE.exec(line);
        if (found) {
            code = hex64(found[1]);
        }
        found = DOT_ARGS.exec(line);
        if (found) {
            args = found[1].split(/\s+/).map(hex64);
        }
    }
    if (!isZero(code) && args.length === 4) {
        return { code: code, args: args };
    }
    code = null;
    let hint = null;
    const params = {};
    for (const line of linesOf(analyze)) {
        for (const pattern of [ANALYZE_CODE, ANALYZE_TITLE]) {
            const found = pattern.exec(line);
            if (found && code === null) {
                code = hex64(found[1]);
            }
        }
        if (CODE_INTEGRITY_ARG1.test(line)) {
            hint = hex64("c4"); // an excerpt without its title: Arg1's text is 0xC4's code-integrity wording
        }
        const found = ANALYZE_PARAM.exec(line) || ANALYZE_ARG.exec(line);
        if (found && !(found[1] in params)) {
            params[found[1]] = hex64(found[2]);
        }
    }
    code = code === null ? hint : code;
    if (code === null || !("1" in params)) {
        return null;
    }
    return { code: code, args: ["1", "2", "3", "4"].map((key) => (key in params ? params[key] : null)) };
}

function stackAddresses(outputs) {
    const found = [];
    for (const output of outputs) {
        for (const line of linesOf(output)) {
            const frame = FRAME.exec(line);
            if (frame) {
                const value = hex64(frame[2]);
                if (!isZero(value)) {
                    found.push(value);
                }
            }
        }
    }
    return found;
}

function parseModules(output) {
    const modules = [];
    for (const line of linesOf(output)) {
        const row = MODULE.exec(line);
        if (row) {
            const start = hex64(row[1]);
            const end = hex64(row[2]);
            if (start !== null && end !== null && start < end) {
                modules.push({ start: start, end: end, name: row[3] });
            }
        }
    }
    return modules;
}

// Group 1 of the first line of `output` that `pattern` finds, or null.
function firstGroup(pattern, output) {
    for (const line of linesOf(output)) {
        const found = pattern.exec(line);
        if (found) {
            return found[1];
        }
    }
    return null;
}

function printedString(output) {
    return firstGroup(STRING, output);
}

function stem(name) {
    let text = name.trim().toLowerCase().replace(/\\/g, "/");
    text = text.slice(text.lastIndexOf("/") + 1);
    for (const suffix of [".sys", ".dll", ".exe"]) {
        if (text.endsWith(suffix)) {
            return text.slice(0, -suffix.length);
        }
    }
    return text;
}

function subcode(bugcheck) {
    if (!bugcheck || bugcheck.code !== hex64("c4") || bugcheck.args[0] === null) {
        return null;
    }
    return short(bugcheck.args[0]);
}

// The blamed driver's base, found by comparing numbers and names (a printed name is never passed on).
function blamedBase(bugcheck, modules, analyze, imageName) {
    const caller = bugcheck ? bugcheck.args[1] : null;
    if (CALLER_SUBCODES.indexOf(subcode(bugcheck)) >= 0 && caller !== null) {
        for (const module of modules) {
            if (module.start <= caller && caller < module.end) {
                return module.start;
            }
        }
    }
    const names = imageName ? [imageName] : [];
    let faulting = null;
    for (const line of linesOf(analyze)) {
        let found = NAME_FIELD.exec(line);
        if (found) {
            names.push(found[1]);
        }
        found = FAULTING_MODULE.exec(line);
        if (found && faulting === null) {
            faulting = hex64(found[1]);
        }
    }
    for (const wanted of names) {
        const key = stem(wanted);
        if (key === "nt" || key === "unknown_image" || key === "") {
            continue;
        }
        for (const module of modules) {
            if (stem(module.name) === key) {
                return module.start;
            }
        }
    }
    return faulting;
}

function targetBuild(vertarget) {
    return firstGroup(BUILT_BY, vertarget) || firstGroup(KERNEL_VERSION, vertarget);
}

function now() {
    return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

// One JSON line, ASCII only (the "Ascii" text writer must never meet another character), keys sorted.
function jsonLine(record) {
    const keys = Object.keys(record).sort();
    const text = "{" + keys.map((key) => JSON.stringify(key) + ":" + JSON.stringify(record[key])).join(",") + "}";
    return text.replace(/[\u007f-\uffff]/g, (c) => "\\u" + ("0000" + c.charCodeAt(0).toString(16)).slice(-4));
}

// An append-only session file written with the debugger's file API, closed after every record.
class Session {
    constructor(path) {
        this.path = path;
        this.seq = 0;
    }

    open() {
        const fs = host.namespace.Debugger.Utility.FileSystem;
        if (fs.FileExists(this.path)) {
            const lines = this._lines();
            if (lines.length > 0) {
                let header = null;
                try {
                    header = JSON.parse(lines[0]);
                } catch (error) {
                    header = null;
                }
                if (header === null || typeof header !== "object" || header.format !== FORMAT) {
                    throw new Error(this.path + " exists and is not an hvci-triage session file");
                }
                this.seq = lines.length - 1;
                return;
            }
        }
        this.write({
            format: FORMAT,
            version: VERSION,
            kind: "session",
            collector: COLLECTOR,
            started: now(),
        });
    }

    _lines() {
        const fs = host.namespace.Debugger.Utility.FileSystem;
        const file = fs.OpenFile(this.path);
        const lines = [];
        try {
            const reader = fs.CreateTextReader(file, "Ascii");
            for (const line of reader.ReadLineContents()) {
                lines.push(line);
            }
        } finally {
            file.Close();
        }
        while (lines.length > 0 && lines[lines.length - 1] === "") {
            lines.pop();
        }
        return lines;
    }

    // Appends one record: the file is opened for writing ("OpenExisting", or "CreateNew" for the header),
    // written at its end (Position = Size) and closed, so the record is on disk when this returns.
    write(record) {
        const fs = host.namespace.Debugger.Utility.FileSystem;
        const file = fs.CreateFile(this.path, fs.FileExists(this.path) ? "OpenExisting" : "CreateNew");
        try {
            file.Position = file.Size;
            fs.CreateTextWriter(file, "Ascii").Write(jsonLine(record) + "\n");
        } finally {
            file.Close();
        }
    }

    // `size`: characters the command printed; more than `output` holds when it was cut at MAX_OUTPUT.
    command(command, output, size, build, error) {
        this.seq += 1;
        const record = {
            kind: "command",
            seq: this.seq,
            command: command,
            output: output,
            time: now(),
            target: build,
        };
        if (size > output.length) {
            record.truncated = size;
        }
        if (error !== null) {
            record.error = error;
        }
        this.write(record);
    }
}

class Collector {
    constructor(session) {
        this.session = session;
        this.build = null;
        this.sent = [];
    }

    run(command) {
        if (!allowed(command)) {
            throw new Error("refusing a command outside the fixed set: " + command);
        }
        this.sent.push(command);
        let output = "";
        let size = 0;
        let error = null;
        try {
            const lines = [];
            for (const line of host.namespace.Debugger.Utility.Control.ExecuteCommand(command)) {
                const text = String(line);
                if (size < MAX_OUTPUT) {
                    lines.push(text);
                }
                size += text.length + 1;
            }
            output = lines.length > 0 ? (lines.join("\n") + "\n").slice(0, MAX_OUTPUT) : "";
        } catch (problem) {
            error = String(problem && problem.message !== undefined ? problem.message : problem).slice(0, 4096);
        }
        if (command === "vertarget") {
            this.build = targetBuild(output.slice(0, MAX_OUTPUT));
        }
        this.session.command(command, output, size, this.build, error);
        return output;
    }

    collect() {
        const outputs = {};
        for (const command of FIXED_COMMANDS) {
            outputs[command] = this.run(command);
        }
        const analyze = outputs["!analyze -v"];
        const bugcheck = parseBugcheck(outputs[".bugcheck"], analyze);
        const addresses = stackAddresses([outputs["kb"], analyze]);
        const kind = subcode(bugcheck);
        if (CALLER_SUBCODES.indexOf(kind) >= 0 && !isZero(bugcheck.args[1])) {
            addresses.unshift(bugcheck.args[1]);
        }
        const seen = {};
        let count = 0;
        for (const address of addresses) {
            if (!(address in seen) && count < MAX_ADDRESSES) {
                seen[address] = true;
                count += 1;
                this.run(addressCommand("ln", address));
            }
        }
        let imageName = null;
        if (IMAGE_SUBCODES.indexOf(kind) >= 0) {
            if (!isZero(bugcheck.args[1])) {
                imageName = printedString(this.run(addressCommand("dS", bugcheck.args[1])));
            }
            if (!isZero(bugcheck.args[3])) {
                this.run(addressCommand("da", bugcheck.args[3]));
            }
        }
        const base = blamedBase(bugcheck, parseModules(outputs["lm"]), analyze, imageName);
        if (!isZero(base)) {
            this.run(addressCommand("!dh", base));
        }
        return bugcheck;
    }
}

// dx @$scriptContents.collect("C:\\path\\session.jsonl")
function collect(sessionPath) {
    const log = host.diagnostics.debugLog;
    if (typeof sessionPath !== "string" || sessionPath === "") {
        log("hvci-triage collector: give the session file: dx @$scriptContents.collect(\"C:\\\\path\\\\session.jsonl\")\n");
        return "no session file given";
    }
    const session = new Session(sessionPath);
    try {
        session.open();
    } catch (problem) {
        log("hvci-triage collector: " + (problem && problem.message ? problem.message : problem) + "\n");
        return "not collected";
    }
    const collector = new Collector(session);
    const bugcheck = collector.collect();
    const stop = bugcheck ? "bug check 0x" + short(bugcheck.code) : "no bug check";
    const message = collector.sent.length + " commands (" + stop + ") recorded in " + sessionPath;
    log("hvci-triage collector: " + message + "\n");
    log("On a machine with hvci-triage: hvci-triage analyze " + sessionPath + "\n");
    return message;
}
