/** Reading an agent's Prometheus metrics over mTLS, as a monitor or operator would. */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

/** GET /metrics on 127.0.0.1:`port` with the cert dir's identity; rejects on a status other than 200. */
export function scrapeMetrics(port: number, certDir: string): Promise<string> {
  const read = (f: string) => readFileSync(join(certDir, f));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/metrics', servername: 'localhost', ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem'), agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics: ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The value of an unlabelled sample `name` in a Prometheus text page (NaN when absent). */
export function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : NaN;
}
