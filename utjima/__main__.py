from utjima.cli import main

raise SystemExit(main())
