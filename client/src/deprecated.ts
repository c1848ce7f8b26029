/**
 * Old names kept so that no user's code breaks: the SDK's client was called
 * `RegistryClient` before the glossary (docs/glossary.md) settled on
 * *information center* for the service and *Roster* for what a user
 * installs. Each alias is the very same value or type as its new name.
 */
import { RosterClient, type RosterClientOptions } from './client.ts';

/** @deprecated Renamed RosterClient; this alias stays for 0.x. */
export const RegistryClient = RosterClient;
/** @deprecated Renamed RosterClient; this alias stays for 0.x. */
export type RegistryClient = RosterClient;
/** @deprecated Renamed RosterClientOptions; this alias stays for 0.x. */
export type RegistryClientOptions = RosterClientOptions;
