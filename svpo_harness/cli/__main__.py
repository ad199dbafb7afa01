from svpo_harness.cli import main

main()
