// Placeholder until the handler lands; the stack bundles this entry.
export const handler = async (): Promise<void> => {
  throw new Error('not implemented yet');
};
