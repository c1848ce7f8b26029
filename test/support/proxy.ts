/** The TCP fault proxy lives with the robustness harness (robustness/proxy.ts); the tests share it. */
export { startProxy, type ProxyMode, type ProxyOptions, type TcpProxy } from '../../robustness/proxy.ts';
