import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { parseManifest } from './manifest.js';
const MAX_MALFORMED_LISTED = 20;
const DEFAULT_CLASSES = ['default'];
const recordSchema = z.object({
    uuid: z.string().regex(/^\S+$/, 'uuid must be a non-empty string without spaces'),
    manifest_text: z.string(),
    replication_desired: z.number().int().min(0).nullish(),
    storage_classes_desired: z.array(z.string().min(1)).nullish(),
});
/**
 * Reads every collection record of `source` — a `.jsonl` file (one record per
 * line), a `.json` file (one record or an array), or a directory of such
 * files (not recursive, dot-files skipped, in name order) — and hands each
 * valid record to `sink`. A malformed record is counted with its file and
 * line and skipped: the caller refuses to trash when any was seen. Never
 * throws for bad input; an unreadable source is reported in the summary.
 */
export async function scanCollections(source, sink, options) {
    const summary = {
        files: 0,
        collections: 0,
        references: 0,
        malformed: 0,
        malformedRecords: [],
        unreadable: undefined,
    };
    let files;
    try {
        files = await listFiles(source);
    }
    catch (err) {
        summary.unreadable = `${source}: ${err.code ?? err.message}`;
        return summary;
    }
    const total = files.reduce((n, f) => n + f.size, 0);
    let done = 0;
    const scanner = createRecordScanner(summary, sink, options.defaultReplication);
    for (const { file, size } of files) {
        summary.files++;
        try {
            if (file.endsWith('.jsonl')) {
                await scanJsonLines(file, scanner, (bytes) => options.onProgress?.(done + bytes, total));
            }
            else {
                await scanJsonFile(file, scanner);
            }
        }
        catch (err) {
            summary.unreadable = `${file}: ${err.code ?? err.message}`;
            return summary;
        }
        done += size;
        options.onProgress?.(done, total);
    }
    return summary;
}
async function listFiles(source) {
    const info = await stat(source);
    if (!info.isDirectory())
        return [{ file: source, size: info.size }];
    const names = (await readdir(source)).filter((n) => !n.startsWith('.') && /\.jsonl?$/.test(n)).sort();
    const out = [];
    for (const name of names) {
        const file = path.join(source, name);
        const s = await stat(file);
        if (s.isFile())
            out.push({ file, size: s.size });
    }
    return out;
}
function createRecordScanner(summary, sink, defaultReplication) {
    const invalidJson = (file, line, err) => {
        const reason = err.message.split('\n')[0] ?? '';
        malformed(summary, { file, line, reason: `invalid JSON: ${reason.replace(/ (?:in JSON )?at position \d+.*$| \(line \d+ column \d+\)$/, '')}` });
    };
    const record = (record, file, line) => {
        const parsed = recordSchema.safeParse(record);
        if (!parsed.success) {
            const issue = parsed.error.issues[0];
            const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
            return malformed(summary, { file, line, reason: `${where}${issue?.message ?? 'invalid record'}` });
        }
        const refs = parseManifest(parsed.data.manifest_text);
        if (typeof refs === 'string')
            return malformed(summary, { file, line, reason: `${parsed.data.uuid}: ${refs}` });
        const wanted = parsed.data.storage_classes_desired;
        summary.collections++;
        summary.references += refs.hashes.length;
        return sink.addCollection({
            uuid: parsed.data.uuid,
            replication: parsed.data.replication_desired ?? defaultReplication,
            classes: wanted === undefined || wanted === null || wanted.length === 0 ? DEFAULT_CLASSES : [...new Set(wanted)].sort(),
            refs,
        });
    };
    return { record, invalidJson };
}
function malformed(summary, record) {
    summary.malformed++;
    if (summary.malformedRecords.length < MAX_MALFORMED_LISTED)
        summary.malformedRecords.push(record);
}
async function scanJsonLines(file, scan, onBytes) {
    const stream = createReadStream(file);
    let bytes = 0;
    let reported = 0;
    stream.on('data', (chunk) => {
        bytes += chunk.length;
    });
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    let lineNo = 0;
    for await (const text of lines) {
        lineNo++;
        if (text.trim() === '')
            continue;
        let record;
        try {
            record = JSON.parse(text);
        }
        catch (err) {
            scan.invalidJson(file, lineNo, err);
            continue;
        }
        const pending = scan.record(record, file, lineNo);
        if (pending !== undefined)
            await pending;
        if (bytes - reported >= 1 << 20) {
            reported = bytes;
            onBytes(bytes);
        }
    }
}
async function scanJsonFile(file, scan) {
    const text = await readFile(file, 'utf8');
    let doc;
    try {
        doc = JSON.parse(text);
    }
    catch (err) {
        scan.invalidJson(file, errorLine(text, err.message), err);
        return;
    }
    for (const record of Array.isArray(doc) ? doc : [doc])
        await scan.record(record, file, 1);
}
/** The line of a JSON.parse error: Node 20 gives `at position N`, later versions `(line L column C)`. */
function errorLine(text, message) {
    const line = /line (\d+)/.exec(message)?.[1];
    if (line !== undefined)
        return Number(line);
    const position = /at position (\d+)/.exec(message)?.[1];
    if (position === undefined)
        return 1;
    let n = 1;
    for (let i = text.indexOf('\n'); i !== -1 && i < Number(position); i = text.indexOf('\n', i + 1))
        n++;
    return n;
}
//# sourceMappingURL=collections.js.map