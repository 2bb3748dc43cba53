// preview2-shim starts with no preopened directories, and jco's toolchain (componentize,
// wasm-tools, typegen) runs as WASI components on that shim: without a preopen every
// path it reads fails with "failed to get path metadata". Importing this module once
// grants the toolchain the host file system. It is only imported by build-time tools,
// never by code that runs guests.
import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";

// The package's typings resolve to the browser build, which takes file data, not host paths.
_setPreopens({ "/": "/" } as never);
