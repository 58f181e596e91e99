// SSRF-safe outgoing HTTP: the only way clipmod reaches a customer-supplied URL (image fetches and
// webhook deliveries). Private, loopback, metadata and other internal addresses are refused at
// resolution time unless an operator allow-lists them. Depends only on node built-ins and
// shared/errors; it must never read process.env or import services, workers or other shared modules.

export {
  type AddressCategory,
  type AddressVerdict,
  checkAddress,
  classifyAddress,
} from './address-policy.ts';
export { type Cidr, cidrContains, parseCidr, parseCidrList } from './cidr.ts';
export { type IpAddress, parseIpAddress } from './ip-address.ts';
export { assertPortAllowed, forbiddenPorts, isPortAllowed, portOf } from './port-policy.ts';
export { type HostLookup, type ResolvedAddress, systemLookup } from './resolve-allowed-addresses.ts';
export {
  imageFetchDefaults,
  type SafeFetchOptions,
  type SafeFetchResponse,
  safeFetch,
  webhookFetchDefaults,
} from './safe-fetch.ts';
export type { OversizePolicy } from './send-pinned-request.ts';
