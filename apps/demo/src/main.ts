// iommu-demo: the CLI lands with issue #9.
process.stdout.write("iommu-demo: boards and the VMM story are not built yet (issue #9)\n");
