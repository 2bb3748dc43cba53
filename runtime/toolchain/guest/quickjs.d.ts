// Types for tests that run quickjs.js in Node.
export declare const TextEncoder: typeof globalThis.TextEncoder;
export declare const TextDecoder: typeof globalThis.TextDecoder;
export declare const Date: DateConstructor;
export declare const performance: { now(): never };
