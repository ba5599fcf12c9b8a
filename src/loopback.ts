// Whether an address (a listen host, or a client's address as Node reports it) is this machine's loopback.
export function isLoopback (address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}
