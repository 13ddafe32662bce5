#!/usr/bin/env node
// The `cxr` command of @cxr/client.
import { main } from './main';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Not an error the user can fix: a bug, shown whole.
    console.error(error);
    process.exitCode = 1;
  },
);
