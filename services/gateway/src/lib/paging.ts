import { Types } from 'mongoose';

/**
 * Keyset paging, newest first: `before` is the id of the last item of the previous page.
 * Returns the filter to add and how to make the next page's cursor.
 */
export function page(query: { limit: number; before?: string | undefined }) {
  return {
    filter: query.before ? { _id: { $lt: new Types.ObjectId(query.before) } } : {},
    next: (items: { _id: Types.ObjectId }[]) =>
      items.length === query.limit ? String(items[items.length - 1]!._id) : null,
  };
}
