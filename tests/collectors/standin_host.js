"use strict";
// A stand-in for WinDbg's JavaScript host: runs collectors/windbg_collector.js under node the way
// `.scriptload` + `dx @$scriptContents.collect(path)` does, answering ExecuteCommand from a transcript.
//
//   node standin_host.js SCRIPT SESSION_FILE < answers.json
//
// answers.json: {"fixed": {command: output}, "addressed": [[kind, address, output]], "image_dump": text,
// "by_word": {first word: output}, "fail": [command]}. The last line printed is the JSON list of the
// commands the script sent, as ExecuteCommand saw them.

const fs = require("fs");
const vm = require("vm");

const [script, sessionPath] = process.argv.slice(2);
const answers = JSON.parse(fs.readFileSync(0, "utf8"));
const sent = [];

function answer(command) {
    if (answers.fail && answers.fail.indexOf(command) >= 0) {
        throw new Error("Couldn't resolve error at '" + command + "'");
    }
    const fixed = answers.fixed || {};
    if (Object.prototype.hasOwnProperty.call(fixed, command)) {
        return fixed[command];
    }
    const [kind, argument] = command.split(" ");
    if (answers.by_word && Object.prototype.hasOwnProperty.call(answers.by_word, kind)) {
        return answers.by_word[kind];
    }
    if (kind === "!dh" && answers.image_dump) {
        return answers.image_dump;
    }
    if (argument && argument.startsWith("0x")) {
        const wanted = BigInt(argument);
        for (const [k, address, output] of answers.addressed || []) {
            if (k === kind && BigInt(address) === wanted) {
                return output;
            }
        }
    }
    return "";
}

// The documented file object: Position (read/write), Size, Close(); opened for writing by CreateFile.
class File {
    constructor(path, mode) {
        this.fd = fs.openSync(path, mode);
        this.Position = 0;
    }

    get Size() {
        return fs.fstatSync(this.fd).size;
    }

    Close() {
        fs.closeSync(this.fd);
    }
}

const host = {
    apiVersionSupport: function (major, minor) {
        this.major = major;
        this.minor = minor;
    },
    diagnostics: { debugLog: (text) => process.stderr.write(String(text)) },
    namespace: {
        Debugger: {
            Utility: {
                Control: {
                    ExecuteCommand(command) {
                        sent.push(command);
                        const lines = answer(command).split("\n");
                        if (lines[lines.length - 1] === "") {
                            lines.pop();
                        }
                        return lines;
                    },
                },
                FileSystem: {
                    FileExists: (path) => fs.existsSync(path),
                    OpenFile: (path) => new File(path, "r"),
                    // the documented dispositions: "OpenExisting", "CreateNew", "CreateAlways"
                    CreateFile(path, disposition) {
                        const exists = fs.existsSync(path);
                        if (disposition === "OpenExisting" && exists) {
                            return new File(path, "r+");
                        }
                        if (disposition === "CreateNew" && !exists) {
                            return new File(path, "wx+");
                        }
                        throw new Error("CreateFile(" + disposition + ") on a file that " + (exists ? "exists" : "is missing"));
                    },
                    CreateTextReader(file, encoding) {
                        if (encoding !== "Ascii") {
                            throw new Error("unexpected encoding " + encoding);
                        }
                        const text = fs.readFileSync(file.fd, "latin1");
                        return { ReadLineContents: () => text.split(/\r?\n/) };
                    },
                    CreateTextWriter(file, encoding) {
                        if (encoding !== "Ascii") {
                            throw new Error("unexpected encoding " + encoding);
                        }
                        return {
                            Write(text) {
                                if (/[^\x00-\x7f]/.test(text)) {
                                    throw new Error("non-ASCII text given to an Ascii writer");
                                }
                                const bytes = Buffer.from(text, "ascii");
                                fs.writeSync(file.fd, bytes, 0, bytes.length, file.Position);
                                file.Position += bytes.length;
                            },
                        };
                    },
                },
            },
        },
    },
};

const context = vm.createContext({ host: host });
vm.runInContext(fs.readFileSync(script, "utf8"), context, { filename: script });
const support = vm.runInContext("initializeScript()", context);
if (!(support[0] instanceof host.apiVersionSupport)) {
    throw new Error("initializeScript() must return the API version it needs");
}
context.__session = sessionPath;
const result = vm.runInContext("collect(__session)", context);
process.stderr.write("collect() returned: " + result + "\n");
process.stdout.write(JSON.stringify(sent) + "\n");
