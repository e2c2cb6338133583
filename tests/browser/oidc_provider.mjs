// A real OpenID provider (the npm registry's certified oidc-provider) on 127.0.0.1:PORT, for
// the console's sign-on test (tests/integration/sign_on_test.cpp). Each person is a client of
// the client-credentials grant; its access tokens are RS256 JWTs (RFC 9068) for the resource
// it asks for, carrying preferred_username and roles. "brief" gets tokens that expire
// after 5 seconds.
//
//   node oidc_provider.mjs PORT
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const roles = { alice: 'analyst', bob: 'analyst', lena: 'lead', lars: 'lead', mallory: 'admin', brief: 'analyst' };

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: Object.keys(roles).map((name) => ({
    client_id: name,
    client_secret: `${name}-secret`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope: 'console',
  })),
  scopes: ['console'],
  jwks: { keys: [signingKey] },
  ttl: { ClientCredentials: (ctx, token, client) => (client.clientId === 'brief' ? 5 : 600) },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:fraud-console',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: 'console',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: client.clientId === 'brief' ? 5 : 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => ({ preferred_username: token.clientId, roles: roles[token.clientId] }),
});
provider.listen(port, '127.0.0.1');
