from livedream.cli import main

raise SystemExit(main())
