import { createServer, type Server } from 'node:http';
import { request } from 'node:http';
import type { LookupFunction } from 'node:net';
import { AddressGuard, CallbackRefusedError, callbackUrlProblem, parseNetworks } from './address-guard';

describe('the webhook address guard', () => {
  const guard = new AddressGuard('');

  it('allows public unicast addresses, v4 and v6', () => {
    for (const address of ['8.8.8.8', '93.184.215.14', '2606:4700:4700::1111']) {
      expect({ address, allowed: guard.allows(address) }).toEqual({ address, allowed: true });
    }
  });

  it('refuses loopback, private, link-local, CGNAT, unspecified, multicast, broadcast and their mapped forms', () => {
    for (const address of [
      '127.0.0.1',
      '127.5.6.7',
      '10.0.0.1',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd12:3456::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:169.254.169.254',
      '::ffff:10.0.0.1',
      '64:ff9b::a00:1', // NAT64 of 10.0.0.1
      '2002:a00:1::1', // 6to4 of 10.0.0.1
      'not-an-address',
    ]) {
      expect({ address, allowed: guard.allows(address) }).toEqual({ address, allowed: false });
    }
  });

  it('allows what the operator allows, and only that', () => {
    const local = new AddressGuard('127.0.0.0/8, fd00::/8');
    expect(local.allows('127.0.0.1')).toBe(true);
    expect(local.allows('::ffff:127.0.0.1')).toBe(true);
    expect(local.allows('fd12::1')).toBe(true);
    expect(local.allows('::1')).toBe(false);
    expect(local.allows('10.0.0.1')).toBe(false);
    expect(local.allows('169.254.169.254')).toBe(false);
  });

  it('refuses a malformed network list', () => {
    expect(() => parseNetworks('127.0.0.0/8,10.0.0.0')).toThrow(/'10.0.0.0' is not a network in CIDR/);
    expect(parseNetworks(' ')).toEqual([]);
  });

  it('refuses a host name if ANY address it resolves to is not allowed (checked with an injected resolver)', async () => {
    const resolver = jest.fn(async (host: string) =>
      host === 'mixed.example'
        ? [
            { address: '93.184.215.14', family: 4 },
            { address: '10.1.2.3', family: 4 },
          ]
        : [{ address: '93.184.215.14', family: 4 }],
    );
    const resolving = new AddressGuard('', resolver);
    await expect(resolving.addresses('mixed.example')).rejects.toThrow(CallbackRefusedError);
    await expect(resolving.addresses('mixed.example')).rejects.toThrow(/resolves to 10.1.2.3/);
    await expect(resolving.addresses('public.example')).resolves.toEqual([{ address: '93.184.215.14', family: 4 }]);
    await expect(resolving.refuseLiteral('[::1]')).rejects.toThrow(CallbackRefusedError);
    await expect(resolving.refuseLiteral('public.example')).resolves.toBeUndefined();
  });

  describe('as the lookup of a real connection', () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      server = createServer((_req, res) => res.end('ok'));
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      const address = server.address();
      port = typeof address === 'object' && address ? address.port : 0;
    });
    afterAll(async () => {
      await new Promise((done) => server.close(done));
    });

    /** GETs http://<host>:<port>/ with `lookup`: the status, or the error's name. */
    const get = (host: string, lookup: LookupFunction) =>
      new Promise<string>((done) => {
        const req = request({ host, port, path: '/', agent: false, lookup }, (res) => {
          done(String(res.statusCode));
          res.resume();
        });
        req.once('error', (error) => done(error.name));
        req.end();
      });

    it('connects to the checked address when allowed, and never connects when not', async () => {
      // A name that resolves to the loopback address where the server listens.
      const resolver = async () => [{ address: '127.0.0.1', family: 4 }];
      const allowed = new AddressGuard('127.0.0.0/8', resolver);
      const refused = new AddressGuard('10.0.0.0/8', resolver);
      expect(await get('receiver.test', allowed.lookup)).toBe('200');
      expect(await get('receiver.test', refused.lookup)).toBe('CallbackRefusedError');
    });
  });
});

describe('callbackUrlProblem', () => {
  const guard = new AddressGuard('127.0.0.0/8');

  it('takes absolute http(s) URLs to public hosts, names and allowed literals', () => {
    for (const url of [
      'https://example.org/hook',
      'http://receiver.internal.example:8080/x?y=1',
      'http://127.0.0.1:9000/hook',
      'http://localhost:9000/hook',
    ]) {
      expect({ url, problem: callbackUrlProblem(url, guard) }).toEqual({ url, problem: null });
    }
  });

  it('refuses what is not an absolute http(s) URL, is too long, carries credentials or names a refused literal', () => {
    const cases: [string, RegExp][] = [
      ['/relative/hook', /not an absolute URL/],
      ['ftp://example.org/hook', /http:\/\/ or https:\/\//],
      ['file:///etc/passwd', /http:\/\/ or https:\/\//],
      ['https://user:pw@example.org/hook', /user name or password/],
      [`https://example.org/${'a'.repeat(2048)}`, /longer than 2048/],
      ['http://10.0.0.5/hook', /non-public address/],
      ['http://169.254.169.254/latest/meta-data', /non-public address/],
      ['http://[::1]:8080/hook', /non-public address/],
      ['http://[::ffff:10.0.0.1]/hook', /non-public address/],
    ];
    for (const [url, expected] of cases) expect(callbackUrlProblem(url, guard)).toMatch(expected);
    // A name that only looks like an address waits for delivery, where what it resolves to is checked.
    expect(callbackUrlProblem('http://0x7f000001.example/hook', guard)).toBeNull();
    expect(callbackUrlProblem('http://localhost/x', new AddressGuard(''))).toMatch(/non-public address/);
  });
});
