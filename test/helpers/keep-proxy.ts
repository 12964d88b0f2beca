import http from 'node:http'

/**
 * What the proxy does to a 200 index answer (`GET /index…`,
 * `GET /mounts/<uuid>/blocks…`): `cut` drops the final empty line and ends
 * the response cleanly; `reset` sends the first half of the body, then
 * resets the connection; a function rewrites the whole text.
 */
export type IndexFault = 'cut' | 'reset' | ((body: string) => string)

/** One request the proxy forwarded (or tried to). */
export interface ProxiedRequest {
  method: string
  path: string
  /** The request body, for PUT /pull and PUT /trash (the list exactly as the datamanager sent it). */
  body: string | undefined
}

export interface KeepProxy {
  /** Where clients reach the keepstore: the url the cluster config names. */
  url: string
  /** Every request, in arrival order. */
  readonly requests: ProxiedRequest[]
  /** Applied to index answers while set. */
  indexFault: IndexFault | undefined
  /** Bodies of the PUTs to `path` since the start (or since `requests` was emptied). */
  puts(path: '/pull' | '/trash'): string[]
  close(): Promise<void>
}

const isIndex = (p: string): boolean => /^\/(index|mounts\/[^/]+\/blocks)(\/|\?|$)/.test(p)

/**
 * A recording HTTP proxy in front of one keepstore (listening on `port`,
 * forwarding to `target`). It stands in the place of the network between
 * the datamanager and a keepstore: it can cut an index short or reset it
 * mid-body, which a real keepstore only does when its disk fails. When the
 * keepstore behind it is down, the client's connection is reset, so a
 * stopped keepstore still looks like one that does not answer.
 */
export async function startKeepProxy(target: string, port: number): Promise<KeepProxy> {
  const agent = new http.Agent({ keepAlive: false })
  const proxy: KeepProxy = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    indexFault: undefined,
    puts: (p) => proxy.requests.filter((r) => r.method === 'PUT' && r.path === p).map((r) => r.body ?? ''),
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      agent.destroy()
    },
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const p = req.url ?? '/'
      const listPut = req.method === 'PUT' && (p === '/pull' || p === '/trash')
      proxy.requests.push({ method: req.method ?? '', path: p, body: listPut ? body.toString('utf8') : undefined })
      const fault = req.method === 'GET' && isIndex(p) ? proxy.indexFault : undefined
      const upstream = http.request(new URL(p, target), { method: req.method, headers: req.headers, agent }, (up) => {
        if (fault === undefined || up.statusCode !== 200) {
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
          return
        }
        const parts: Buffer[] = []
        up.on('data', (c: Buffer) => parts.push(c))
        up.on('end', () => answerWithFault(res, up.headers, Buffer.concat(parts).toString('utf8'), fault))
      })
      upstream.on('error', () => req.socket.destroy())
      upstream.end(body)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  return proxy
}

function answerWithFault(res: http.ServerResponse, upHeaders: http.IncomingHttpHeaders, text: string, fault: IndexFault): void {
  const headers = { ...upHeaders }
  delete headers['content-length']
  delete headers['transfer-encoding']
  if (fault === 'cut') {
    // An index ends "…\n\n": the last "\n" is the final empty line.
    res.writeHead(200, headers)
    res.end(text.slice(0, -1))
  } else if (fault === 'reset') {
    res.writeHead(200, headers)
    res.write(text.slice(0, Math.max(1, Math.floor(text.length / 2))), () => res.socket?.destroy())
  } else {
    res.writeHead(200, headers)
    res.end(fault(text))
  }
}
