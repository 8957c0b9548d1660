import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { resolvers } from '../resolvers/index.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The SDL of every area, in a stable order. */
export function loadTypeDefs(): string {
  return readdirSync(here)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => readFileSync(join(here, f), 'utf8'))
    .join('\n');
}

/** The served schema: the SDL bound to the resolvers. */
export function buildSchema(): GraphQLSchema {
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: resolvers as never });
}
