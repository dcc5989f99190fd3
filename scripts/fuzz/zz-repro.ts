import { BayUnderTest, docker } from "../lib/bay-under-test.ts";
const bay = await BayUnderTest.launch({ name: "fzrepro", config: {} });
const j = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(bay.url + path, {
    method,
    headers: { "x-owner": "alice", ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return `${res.status} ${(await res.text()).slice(0, 2500)}`;
};
try {
  const sb = JSON.parse((await j("POST", "/v1/sandboxes", {})).slice(4)).id;
  const r = await j("POST", `/v1/sandboxes/${sb}/shell/exec`, { command: "sleep 3600", background: true });
  console.log("bg", r);
  const pid = JSON.parse(r.slice(4)).process_id;
  const c = (await docker.listContainers({ filters: { label: [`bay.sandbox_id=${sb}`] } }))[0]!;
  for (let i = 0; i < 3; i++) {
    console.log("kill", await j("DELETE", `/v1/sandboxes/${sb}/shell/processes/${pid}`));
    const info = await docker.getContainer(c.Id).inspect();
    console.log("  container", info.State.Status, info.State.ExitCode);
    console.log("  list", await j("GET", `/v1/sandboxes/${sb}/filesystem/directories?path=.`));
    await Bun.sleep(1000);
  }
} finally {
  await bay.cleanup();
}
