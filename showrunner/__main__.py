from showrunner.cli import main

raise SystemExit(main())
