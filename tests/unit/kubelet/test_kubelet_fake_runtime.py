import asyncio

from tinykube.kubelet.runtime.fake import EXIT_CODE_ANNOTATION, FakeRuntime
from tinykube.kubelet.runtime.interface import ContainerConfig, ContainerState, PodSandboxConfig


async def test_fake_containers_run_until_stopped_or_injected(tmp_path):
    rt = FakeRuntime(str(tmp_path), pod_cidr="10.1.0.0/24", exit_codes={"job": 3})
    cfg = PodSandboxConfig(name="p", namespace="ns", uid="u", log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(cfg)
    assert (await rt.pod_sandbox_status(sid)).ip == "10.1.0.2"
    web = await rt.create_container(sid, ContainerConfig(name="web", image="nginx", log_path="web/0.log"), cfg)
    job = await rt.create_container(sid, ContainerConfig(name="job", image="x", log_path="job/0.log"), cfg)
    await rt.start_container(web)
    await rt.start_container(job)
    assert (await rt.container_status(web)).state == ContainerState.CONTAINER_RUNNING
    done = await asyncio.wait_for(rt.wait_container(job), 1)
    assert done.exit_code == 3 and done.reason == "Error"
    rt.inject_exit(web, 0)
    assert (await rt.container_status(web)).reason == "Completed"
    with open((await rt.container_status(web)).log_path) as f:
        assert f.read().endswith("stdout F fake container web started\n")
    await rt.remove_pod_sandbox(sid)
    assert rt.sandboxes == {} and rt.containers == {}


async def test_exit_code_from_pod_annotation(tmp_path):
    rt = FakeRuntime(str(tmp_path))
    cfg = PodSandboxConfig(name="p", namespace="ns", uid="u", annotations={EXIT_CODE_ANNOTATION: "0"})
    sid = await rt.run_pod_sandbox(cfg)
    cid = await rt.create_container(sid, ContainerConfig(name="c", image="x"), cfg)
    await rt.start_container(cid)
    assert (await rt.container_status(cid)).state == ContainerState.CONTAINER_EXITED
