package main

// subcommands lists every subcommand; the first registered with Default() runs
// when none is named.
var subcommands = []subcommand{
	addServe,
	addClassify,
	addCatalog,
	addSimulate,
	addLedger,
	addForecast,
	addReconcile,
}
