#!/usr/bin/env node
// The `mezo` command: runs the compiled CLI (npm ci builds dist/ in its prepare step).
import '../dist/cli/mezo.js';
