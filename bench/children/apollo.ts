/**
 * Reference: a bare Apollo Server answering a trivial mutation — the framework's own ceiling on
 * this machine, with none of the broker's work behind it. Prints `{"url": …}` once listening.
 */
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

const typeDefs = `#graphql
  type Query { ok: Boolean! }
  type Mutation { ping(n: Int!): Int! }
`;
const resolvers = {
  Query: { ok: () => true },
  Mutation: { ping: (_: unknown, args: { n: number }) => args.n + 1 },
};

const server = new ApolloServer({ typeDefs, resolvers });
const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });

const stop = () => {
  server.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ url: url.replace(/\/$/, '') })}\n`);
