import { KeepError } from '../shared/errors.js'
import { parseLocator, type Locator } from '../shared/locator.js'

/**
 * Arvados manifest text, one stream line at a time:
 * `<stream> <locator>… <pos>:<len>:<name>…`. Names escape, as Arvados'
 * SDKs do, a backslash, `:`, and every byte up to and including space as
 * `\ooo` (octal); we also escape DEL and any other whitespace a reader
 * could split on (U+00A0 and the like), byte by byte in UTF-8.
 */

const NEEDS_ESCAPE = /[\\:\x00-\x20\x7f]|\s/u

export function escapeName(name: string): string {
  let out = ''
  for (const ch of name) {
    if (!NEEDS_ESCAPE.test(ch)) {
      out += ch
      continue
    }
    for (const byte of Buffer.from(ch, 'utf8')) out += `\\${byte.toString(8).padStart(3, '0')}`
  }
  return out
}

/** Inverse of {@link escapeName}: `\ooo` sequences become bytes, then UTF-8. */
export function unescapeName(text: string): string {
  const bytes: number[] = []
  for (let i = 0; i < text.length; ) {
    const m = /^\\([0-3][0-7]{2})/.exec(text.slice(i, i + 4))
    if (m) {
      bytes.push(parseInt(m[1]!, 8))
      i += 4
    } else {
      const cp = text.codePointAt(i)!
      const ch = String.fromCodePoint(cp)
      for (const b of Buffer.from(ch, 'utf8')) bytes.push(b)
      i += ch.length
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

/** `. <locators> 0:<size>:<name>`: one file in the root stream. */
export function manifestLine(locators: readonly string[], size: number, name: string): string {
  return `. ${locators.join(' ')} 0:${size}:${escapeName(name)}`
}

/** A block of a stream and where its bytes start in the stream. */
export interface StreamBlock {
  locator: Locator
  /** The locator as given (hints kept: a `+A` may be all a keyless client has). */
  text: string
  hash: string
  size: number
  offset: number
}

/** One part of the output: bytes [from, to) of a block. */
export interface Piece {
  block: number
  from: number
  to: number
}

/** What `keep get` reads: the blocks and which of their bytes, in output order. */
export interface ReadPlan {
  blocks: StreamBlock[]
  pieces: Piece[]
  size: number
  /** The file's name (unescaped) for a manifest line; undefined for a bare locator. */
  name: string | undefined
}

function badInput(message: string): KeepError {
  return new KeepError('KEEP_INVALID_LOCATOR', message)
}

function streamBlock(text: string, offset: number): StreamBlock {
  const locator = parseLocator(text)
  if (locator.size === undefined) throw badInput(`bad locator ${text}: a size hint is needed (hash+size)`)
  if (locator.size > 64 * 1024 * 1024) throw badInput(`bad locator ${text}: a block holds at most 64 MiB`)
  return { locator, text, hash: locator.hash, size: locator.size, offset }
}

/**
 * A bare locator (the whole block) or one manifest line naming one file (its
 * segments, in order; a line with several files is refused: get them one by
 * one).
 * @throws KeepError KEEP_INVALID_LOCATOR, one line saying what is wrong.
 */
export function planRead(arg: string): ReadPlan {
  const text = arg.replace(/\r?\n$/, '')
  if (!/\s/.test(text)) {
    let block: StreamBlock
    try {
      block = streamBlock(text, 0)
    } catch (err) {
      throw badInput(`bad locator ${JSON.stringify(text.slice(0, 80))}: ${(err as Error).message.replace(/^invalid locator: |^bad locator \S+: /, '')}`)
    }
    return { blocks: [block], pieces: [{ block: 0, from: 0, to: block.size }], size: block.size, name: undefined }
  }
  if (text.includes('\n')) throw badInput('bad manifest: give one line (one file)')
  const tokens = text.split(' ')
  if (!tokens[0]?.startsWith('.')) throw badInput('bad manifest line: it must start with a stream name such as "."')
  const blocks: StreamBlock[] = []
  let i = 1
  let offset = 0
  for (; i < tokens.length && /^[0-9a-fA-F]{32}(?:\+|$)/.test(tokens[i]!); i++) {
    try {
      blocks.push(streamBlock(tokens[i]!, offset))
    } catch (err) {
      throw badInput(`bad manifest line: ${(err as Error).message.replace(/^invalid locator: /, `bad locator ${tokens[i]}: `)}`)
    }
    offset += blocks[blocks.length - 1]!.size
  }
  if (blocks.length === 0) throw badInput('bad manifest line: no locator after the stream name')
  const segments = tokens.slice(i).map((token) => {
    const m = /^(\d+):(\d+):(.+)$/.exec(token)
    if (!m) throw badInput(`bad manifest line: ${JSON.stringify(token.slice(0, 80))} is not a pos:len:name segment`)
    return { pos: Number(m[1]), len: Number(m[2]), name: m[3]! }
  })
  if (segments.length === 0) throw badInput('bad manifest line: no file segment (pos:len:name)')
  const names = [...new Set(segments.map((s) => s.name))]
  if (names.length > 1) throw badInput(`manifest line names ${names.length} files (${names.slice(0, 3).map(unescapeName).join(', ')}): get one at a time`)
  const pieces: Piece[] = []
  let size = 0
  for (const seg of segments) {
    if (seg.pos + seg.len > offset) throw badInput(`bad manifest line: segment ${seg.pos}:${seg.len} goes past the stream's ${offset} bytes`)
    size += seg.len
    for (let b = 0; b < blocks.length; b++) {
      const blk = blocks[b]!
      const from = Math.max(seg.pos, blk.offset)
      const to = Math.min(seg.pos + seg.len, blk.offset + blk.size)
      if (from < to) pieces.push({ block: b, from: from - blk.offset, to: to - blk.offset })
    }
  }
  return { blocks, pieces, size, name: unescapeName(names[0]!) }
}
