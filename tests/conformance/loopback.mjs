// Preloaded (node --import) into the suite's origin server, which listens on every
// interface: it makes a listen() given only a port bind to 127.0.0.1, so the test origin
// is not reachable from other hosts.
import net from 'node:net'

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const portOnly = (typeof args[0] === 'number' || /^\d+$/.test(args[0])) &&
    (args.length === 1 || typeof args[1] === 'function')
  if (portOnly) args.splice(1, 0, '127.0.0.1')
  return listen.apply(this, args)
}
