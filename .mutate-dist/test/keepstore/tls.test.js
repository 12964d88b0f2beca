import t from 'tap';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';
import { parseConfig } from '../../shared/config.js';
import { silentLogger } from '../../shared/logger.js';
import { startKeepstore } from '../../keepstore/server.js';
import { freePorts, ADMIN_TOKEN, SIGNING_KEY } from '../helpers/cluster.js';
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');
t.test('tls: a keepstore with a certificate serves HTTPS', async (t) => {
    const [port] = await freePorts(1);
    const config = parseConfig(JSON.stringify({
        cluster: { id: 'zzzzz', systemRootToken: ADMIN_TOKEN, blobSigningKey: SIGNING_KEY },
        keepstores: [
            {
                uuid: 'zzzzz-bi6l4-000000000000000',
                url: `https://127.0.0.1:${port}`,
                tls: { certificate: 'tls-cert.pem', key: 'tls-key.pem' },
                volumes: [{ uuid: 'zzzzz-nyw5e-000000000000000', driver: 'memory' }],
            },
        ],
    }), { baseDir: fixtures });
    const ks = await startKeepstore(config, { logger: silentLogger() });
    t.teardown(() => ks.close());
    t.equal(ks.url, `https://127.0.0.1:${port}`);
    const dispatcher = new Agent({ connect: { ca: await readFile(path.join(fixtures, 'tls-cert.pem')) } });
    t.teardown(() => dispatcher.close());
    const hash = createHash('md5').update('secret').digest('hex');
    const put = await request(`${ks.url}/${hash}`, { method: 'PUT', body: 'secret', dispatcher });
    t.equal(put.statusCode, 200);
    await put.body.dump();
    const index = await request(`${ks.url}/index`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, dispatcher });
    t.match(await index.body.text(), hash);
});
//# sourceMappingURL=tls.test.js.map