/**
 * MD5 of a short ASCII string (at most 55 bytes: one 64-byte block), written
 * out step by step: rendezvous ordering hashes `hash + uuid suffix` (47
 * bytes) once per server or mount per block, and `crypto.hash` costs about a
 * microsecond a call, mostly call overhead. Checked against `node:crypto` in
 * test/shared/md5-short.test.ts.
 */

/**
 * Writes the digest of `s` into `out` as four big-endian words (so comparing
 * the words in order, unsigned, orders digests as their hex does). Returns
 * false, leaving `out` alone, when `s` is longer than 55 characters or not
 * ASCII: the caller then hashes it the ordinary way.
 */
export function md5Short(s: string, out: Uint32Array): boolean {
  const n = s.length
  if (n > 55) return false
  if (packAscii(s, 0, n, WORDS, 0) > 127) return false
  finishBlock(WORDS, n)
  compress(WORDS, out)
  return true
}

/**
 * Packs the 32 characters of `hash` into `head` (16 words) as the start of a
 * block: then {@link md5WithTail} hashes `hash + tail` for each tail without
 * packing the hash again. False when `hash` is not 32 ASCII characters.
 */
export function md5Head(hash: string, head: Int32Array): boolean {
  return hash.length === 32 && packAscii(hash, 0, 32, head, 0) <= 127
}

/** {@link md5Short} of the head's 32 characters then `tail` (words 8 on are rewritten): false (out untouched) when the tail is longer than 23 characters or not ASCII. */
export function md5WithTail(head: Int32Array, tail: string, out: Uint32Array): boolean {
  const n = 32 + tail.length
  if (n > 55) return false
  if (packAscii(tail, 0, tail.length, head, 8) > 127) return false
  finishBlock(head, n)
  compress(head, out)
  return true
}

const WORDS = new Int32Array(16)

/** Packs `s[from, to)` little-endian into `m` from word `word` on, zeroing the rest; returns the OR of the codes (> 127: not ASCII). */
function packAscii(s: string, from: number, to: number, m: Int32Array, word: number): number {
  let high = 0
  let k = word
  let i = from
  for (; i + 3 < to; i += 4, k++) {
    const c0 = s.charCodeAt(i)
    const c1 = s.charCodeAt(i + 1)
    const c2 = s.charCodeAt(i + 2)
    const c3 = s.charCodeAt(i + 3)
    high |= c0 | c1 | c2 | c3
    m[k] = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24)
  }
  let last = 0
  for (let shift = 0; i < to; i++, shift += 8) {
    const c = s.charCodeAt(i)
    high |= c
    last |= c << shift
  }
  for (let j = k; j < 16; j++) m[j] = 0
  m[k] = last
  return high
}

/** The 0x80 after `n` bytes of message, and the length in bits. */
function finishBlock(m: Int32Array, n: number): void {
  m[n >> 2]! |= 0x80 << ((n & 3) << 3)
  m[14] = n << 3
  m[15] = 0
}

function compress(m: Int32Array, out: Uint32Array): void {
  const m0 = m[0]!, m1 = m[1]!, m2 = m[2]!, m3 = m[3]!, m4 = m[4]!, m5 = m[5]!, m6 = m[6]!, m7 = m[7]!
  const m8 = m[8]!, m9 = m[9]!, m10 = m[10]!, m11 = m[11]!, m12 = m[12]!, m13 = m[13]!, m14 = m[14]!, m15 = m[15]!
  let a = 0x67452301
  let b = 0xefcdab89 | 0
  let c = 0x98badcfe | 0
  let d = 0x10325476
  a = (a + ((b & c) | (~b & d)) + m0 + 0xd76aa478) | 0
  a = (((a << 7) | (a >>> 25)) + b) | 0
  d = (d + ((a & b) | (~a & c)) + m1 + 0xe8c7b756) | 0
  d = (((d << 12) | (d >>> 20)) + a) | 0
  c = (c + ((d & a) | (~d & b)) + m2 + 0x242070db) | 0
  c = (((c << 17) | (c >>> 15)) + d) | 0
  b = (b + ((c & d) | (~c & a)) + m3 + 0xc1bdceee) | 0
  b = (((b << 22) | (b >>> 10)) + c) | 0
  a = (a + ((b & c) | (~b & d)) + m4 + 0xf57c0faf) | 0
  a = (((a << 7) | (a >>> 25)) + b) | 0
  d = (d + ((a & b) | (~a & c)) + m5 + 0x4787c62a) | 0
  d = (((d << 12) | (d >>> 20)) + a) | 0
  c = (c + ((d & a) | (~d & b)) + m6 + 0xa8304613) | 0
  c = (((c << 17) | (c >>> 15)) + d) | 0
  b = (b + ((c & d) | (~c & a)) + m7 + 0xfd469501) | 0
  b = (((b << 22) | (b >>> 10)) + c) | 0
  a = (a + ((b & c) | (~b & d)) + m8 + 0x698098d8) | 0
  a = (((a << 7) | (a >>> 25)) + b) | 0
  d = (d + ((a & b) | (~a & c)) + m9 + 0x8b44f7af) | 0
  d = (((d << 12) | (d >>> 20)) + a) | 0
  c = (c + ((d & a) | (~d & b)) + m10 + 0xffff5bb1) | 0
  c = (((c << 17) | (c >>> 15)) + d) | 0
  b = (b + ((c & d) | (~c & a)) + m11 + 0x895cd7be) | 0
  b = (((b << 22) | (b >>> 10)) + c) | 0
  a = (a + ((b & c) | (~b & d)) + m12 + 0x6b901122) | 0
  a = (((a << 7) | (a >>> 25)) + b) | 0
  d = (d + ((a & b) | (~a & c)) + m13 + 0xfd987193) | 0
  d = (((d << 12) | (d >>> 20)) + a) | 0
  c = (c + ((d & a) | (~d & b)) + m14 + 0xa679438e) | 0
  c = (((c << 17) | (c >>> 15)) + d) | 0
  b = (b + ((c & d) | (~c & a)) + m15 + 0x49b40821) | 0
  b = (((b << 22) | (b >>> 10)) + c) | 0
  a = (a + ((d & b) | (~d & c)) + m1 + 0xf61e2562) | 0
  a = (((a << 5) | (a >>> 27)) + b) | 0
  d = (d + ((c & a) | (~c & b)) + m6 + 0xc040b340) | 0
  d = (((d << 9) | (d >>> 23)) + a) | 0
  c = (c + ((b & d) | (~b & a)) + m11 + 0x265e5a51) | 0
  c = (((c << 14) | (c >>> 18)) + d) | 0
  b = (b + ((a & c) | (~a & d)) + m0 + 0xe9b6c7aa) | 0
  b = (((b << 20) | (b >>> 12)) + c) | 0
  a = (a + ((d & b) | (~d & c)) + m5 + 0xd62f105d) | 0
  a = (((a << 5) | (a >>> 27)) + b) | 0
  d = (d + ((c & a) | (~c & b)) + m10 + 0x02441453) | 0
  d = (((d << 9) | (d >>> 23)) + a) | 0
  c = (c + ((b & d) | (~b & a)) + m15 + 0xd8a1e681) | 0
  c = (((c << 14) | (c >>> 18)) + d) | 0
  b = (b + ((a & c) | (~a & d)) + m4 + 0xe7d3fbc8) | 0
  b = (((b << 20) | (b >>> 12)) + c) | 0
  a = (a + ((d & b) | (~d & c)) + m9 + 0x21e1cde6) | 0
  a = (((a << 5) | (a >>> 27)) + b) | 0
  d = (d + ((c & a) | (~c & b)) + m14 + 0xc33707d6) | 0
  d = (((d << 9) | (d >>> 23)) + a) | 0
  c = (c + ((b & d) | (~b & a)) + m3 + 0xf4d50d87) | 0
  c = (((c << 14) | (c >>> 18)) + d) | 0
  b = (b + ((a & c) | (~a & d)) + m8 + 0x455a14ed) | 0
  b = (((b << 20) | (b >>> 12)) + c) | 0
  a = (a + ((d & b) | (~d & c)) + m13 + 0xa9e3e905) | 0
  a = (((a << 5) | (a >>> 27)) + b) | 0
  d = (d + ((c & a) | (~c & b)) + m2 + 0xfcefa3f8) | 0
  d = (((d << 9) | (d >>> 23)) + a) | 0
  c = (c + ((b & d) | (~b & a)) + m7 + 0x676f02d9) | 0
  c = (((c << 14) | (c >>> 18)) + d) | 0
  b = (b + ((a & c) | (~a & d)) + m12 + 0x8d2a4c8a) | 0
  b = (((b << 20) | (b >>> 12)) + c) | 0
  a = (a + (b ^ c ^ d) + m5 + 0xfffa3942) | 0
  a = (((a << 4) | (a >>> 28)) + b) | 0
  d = (d + (a ^ b ^ c) + m8 + 0x8771f681) | 0
  d = (((d << 11) | (d >>> 21)) + a) | 0
  c = (c + (d ^ a ^ b) + m11 + 0x6d9d6122) | 0
  c = (((c << 16) | (c >>> 16)) + d) | 0
  b = (b + (c ^ d ^ a) + m14 + 0xfde5380c) | 0
  b = (((b << 23) | (b >>> 9)) + c) | 0
  a = (a + (b ^ c ^ d) + m1 + 0xa4beea44) | 0
  a = (((a << 4) | (a >>> 28)) + b) | 0
  d = (d + (a ^ b ^ c) + m4 + 0x4bdecfa9) | 0
  d = (((d << 11) | (d >>> 21)) + a) | 0
  c = (c + (d ^ a ^ b) + m7 + 0xf6bb4b60) | 0
  c = (((c << 16) | (c >>> 16)) + d) | 0
  b = (b + (c ^ d ^ a) + m10 + 0xbebfbc70) | 0
  b = (((b << 23) | (b >>> 9)) + c) | 0
  a = (a + (b ^ c ^ d) + m13 + 0x289b7ec6) | 0
  a = (((a << 4) | (a >>> 28)) + b) | 0
  d = (d + (a ^ b ^ c) + m0 + 0xeaa127fa) | 0
  d = (((d << 11) | (d >>> 21)) + a) | 0
  c = (c + (d ^ a ^ b) + m3 + 0xd4ef3085) | 0
  c = (((c << 16) | (c >>> 16)) + d) | 0
  b = (b + (c ^ d ^ a) + m6 + 0x04881d05) | 0
  b = (((b << 23) | (b >>> 9)) + c) | 0
  a = (a + (b ^ c ^ d) + m9 + 0xd9d4d039) | 0
  a = (((a << 4) | (a >>> 28)) + b) | 0
  d = (d + (a ^ b ^ c) + m12 + 0xe6db99e5) | 0
  d = (((d << 11) | (d >>> 21)) + a) | 0
  c = (c + (d ^ a ^ b) + m15 + 0x1fa27cf8) | 0
  c = (((c << 16) | (c >>> 16)) + d) | 0
  b = (b + (c ^ d ^ a) + m2 + 0xc4ac5665) | 0
  b = (((b << 23) | (b >>> 9)) + c) | 0
  a = (a + (c ^ (b | ~d)) + m0 + 0xf4292244) | 0
  a = (((a << 6) | (a >>> 26)) + b) | 0
  d = (d + (b ^ (a | ~c)) + m7 + 0x432aff97) | 0
  d = (((d << 10) | (d >>> 22)) + a) | 0
  c = (c + (a ^ (d | ~b)) + m14 + 0xab9423a7) | 0
  c = (((c << 15) | (c >>> 17)) + d) | 0
  b = (b + (d ^ (c | ~a)) + m5 + 0xfc93a039) | 0
  b = (((b << 21) | (b >>> 11)) + c) | 0
  a = (a + (c ^ (b | ~d)) + m12 + 0x655b59c3) | 0
  a = (((a << 6) | (a >>> 26)) + b) | 0
  d = (d + (b ^ (a | ~c)) + m3 + 0x8f0ccc92) | 0
  d = (((d << 10) | (d >>> 22)) + a) | 0
  c = (c + (a ^ (d | ~b)) + m10 + 0xffeff47d) | 0
  c = (((c << 15) | (c >>> 17)) + d) | 0
  b = (b + (d ^ (c | ~a)) + m1 + 0x85845dd1) | 0
  b = (((b << 21) | (b >>> 11)) + c) | 0
  a = (a + (c ^ (b | ~d)) + m8 + 0x6fa87e4f) | 0
  a = (((a << 6) | (a >>> 26)) + b) | 0
  d = (d + (b ^ (a | ~c)) + m15 + 0xfe2ce6e0) | 0
  d = (((d << 10) | (d >>> 22)) + a) | 0
  c = (c + (a ^ (d | ~b)) + m6 + 0xa3014314) | 0
  c = (((c << 15) | (c >>> 17)) + d) | 0
  b = (b + (d ^ (c | ~a)) + m13 + 0x4e0811a1) | 0
  b = (((b << 21) | (b >>> 11)) + c) | 0
  a = (a + (c ^ (b | ~d)) + m4 + 0xf7537e82) | 0
  a = (((a << 6) | (a >>> 26)) + b) | 0
  d = (d + (b ^ (a | ~c)) + m11 + 0xbd3af235) | 0
  d = (((d << 10) | (d >>> 22)) + a) | 0
  c = (c + (a ^ (d | ~b)) + m2 + 0x2ad7d2bb) | 0
  c = (((c << 15) | (c >>> 17)) + d) | 0
  b = (b + (d ^ (c | ~a)) + m9 + 0xeb86d391) | 0
  b = (((b << 21) | (b >>> 11)) + c) | 0
  out[0] = swap((a + 0x67452301) | 0)
  out[1] = swap((b + 0xefcdab89) | 0)
  out[2] = swap((c + 0x98badcfe) | 0)
  out[3] = swap((d + 0x10325476) | 0)
}

/** The word's bytes reversed, unsigned: MD5 words are little-endian, digests compare byte by byte. */
function swap(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0
}
