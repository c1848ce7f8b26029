/** The directory of an up-to-date CLI and runtime bundle, built now if there is none; undefined with ROSTER_BUNDLE=off or when it cannot be built (bin/bundle.js). */
export function bundleDir(options?: { cacheDir?: string }): Promise<string | undefined>;
