// The one account Durable Object of this deployment, by name.
import type { AccountDO } from "../../durable-objects/account.ts";

export function accountStub(env: Env): DurableObjectStub<AccountDO> {
  return env.ACCOUNT.getByName("account");
}
