module profefe-py/examples/hotapp

go 1.22

require github.com/profefe/profefe v0.0.0-20230214190600-92baf9f0d434
