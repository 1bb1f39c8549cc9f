/**
 * `ictx->objects` (main.c, 6.12): an allocating xarray (`XA_FLAGS_ALLOC1`) of objects with a `users`
 * count. An id is reserved at allocation (`XA_ZERO_ENTRY`), becomes visible at finalize, and is the
 * lowest free one from 1, so destroyed ids are reused at once.
 */
import { ErrnoError } from "@iommu/core";

export type ObjectType = "ioas" | "device" | "hwpt_paging";

/** `struct iommufd_object`. */
export interface IommufdObject {
  readonly id: number;
  readonly type: ObjectType;
  /** `users`: 1 for the table itself, plus one per object or kernel user holding it. */
  users: number;
}

/** `xa_limit_31b`: the highest id xa_alloc hands out. */
const ID_MAX = 0x7fff_ffff;

export class ObjectTable {
  private readonly objects = new Map<number, IommufdObject>();
  /** Ids allocated and not yet finalized (the zero entries). */
  private readonly pending = new Set<number>();

  /** `xa_empty`: no object and no reservation. */
  isEmpty(): boolean {
    return this.objects.size === 0 && this.pending.size === 0;
  }

  /** `__iommufd_object_alloc`: reserve the lowest free id (ENOSPC when none is left). */
  allocId(): number {
    for (let id = 1; id <= ID_MAX; id++) {
      if (!this.objects.has(id) && !this.pending.has(id)) {
        this.pending.add(id);
        return id;
      }
    }
    throw new ErrnoError("ENOSPC", "xa_alloc", "no free object id", {});
  }

  /** `iommufd_object_finalize`: make the object visible under its reserved id. */
  finalize(obj: IommufdObject): void {
    this.pending.delete(obj.id);
    this.objects.set(obj.id, obj);
  }

  /** `iommufd_object_abort`: give back a reserved id. */
  abort(id: number): void {
    this.pending.delete(id);
  }

  /** `iommufd_get_object`: ENOENT for an unknown id or one of another type. */
  get<T extends IommufdObject>(id: number, type?: ObjectType): T {
    const obj = this.objects.get(id);
    if (!obj || (type !== undefined && obj.type !== type)) {
      throw new ErrnoError("ENOENT", "iommufd_get_object", `no ${type ?? "object"} with id ${id}`, { id, type });
    }
    return obj as T;
  }

  /** The object with this id, if any (no type check). */
  find(id: number): IommufdObject | undefined {
    return this.objects.get(id);
  }

  /**
   * `iommufd_object_remove`: take the object out of the table if the table holds its only user.
   * ENOENT for an unknown id, EBUSY while anything else uses it. The caller destroys it.
   */
  remove(id: number): IommufdObject {
    const obj = this.objects.get(id);
    if (!obj) throw new ErrnoError("ENOENT", "iommufd_object_remove", `no object with id ${id}`, { id });
    if (obj.users !== 1) {
      throw new ErrnoError("EBUSY", "iommufd_object_remove", `object ${id} is in use`, { id, users: obj.users });
    }
    this.objects.delete(id);
    obj.users = 0;
    return obj;
  }

  /** Every visible object, by id. */
  all(): IommufdObject[] {
    return [...this.objects.values()].sort((a, b) => a.id - b.id);
  }
}
