export declare const NODE_VERSIONS: Readonly<Record<string, string>>;
export declare function nodeBinary(version: string): string;
export declare function resolveNode(spec: string): string;
