// fetch() under `authsome run` on a Node without NODE_USE_ENV_PROXY support (< 22.21):
// undici's EnvHttpProxyAgent reads HTTPS_PROXY/NO_PROXY; NODE_EXTRA_CA_CERTS adds the run's CA.
import { EnvHttpProxyAgent, setGlobalDispatcher, fetch } from 'undici';

setGlobalDispatcher(new EnvHttpProxyAgent());
const res = await fetch(process.argv[2], {
  headers: { authorization: `Bearer ${process.env.X_ACCESS_TOKEN}` },
});
console.log(await res.text());
